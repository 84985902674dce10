"""Jobs on the Dask LocalCluster against the same work in one process, side by side; prints wall seconds and ratios.

(a) sweep: a grid of small keyed jobs (default 4 collective `smoke` runs of 6 tasks x 3 epochs over seeds 0-3, and
    on each run 5-way 1-shot and 5-shot few-shot jobs of 4 target tasks, learngene and scratch: 4 + 8 = 12 jobs)
    run one after another in this process (core.jobs.execute; --sequential-threads, default torch's count, 2 on 2 cores)
    against plan_sweep/run_plan on a LocalCluster started for the sweep (--workers processes x --threads, default
    2 x 1); the cluster's time includes starting and closing it (its start-up is also printed alone). Job keys
    include the thread count, so the two sides run different (equally sized) jobs. Target: the cluster >= 1.4x
    faster on 2 cores. --ceiling also times the in-process loop at 1 thread (W workers of 1 thread can at best take
    1/W of it, so W x T(1 thread) / T(in-process) bounds the cluster's gain) and the same jobs split by collective run
    over W plain processes of 1 thread, started together, without Dask (what W processes give on this machine).
    --profiler-too also times the cluster with Dask's statistical profiler on in its workers (Dask's default; ours
    turn it off, core.jobs.cluster.WORKER_CONFIG). --spawn-too also times the cluster with its workers spawned, each
    importing Dask and torch itself (Dask's default; ours are forked from a fork server that imported them once,
    core.jobs.cluster._start_method). The fork server is stopped after every cluster side, so each one starts it
    afresh, as a new `learngene sweep` process does.
(c) run: the explorer's default Run of the individual panel (5-way 1-shot, 20 target tasks, learngene and scratch,
    fast individual preset, default selection) on a `fast` glyphs run, as one FewShotJob executed in this process
    against the same job through Engine.submit on an already started LocalCluster (default 2 x 1). The first
    submit (workers import torch and the data) is printed alone; ratios are of the medians after it. Target: the
    cluster <= 1.2x the in-process time.
(b) page, only with --page (or --parts page): the first screen's Train (the `fast` preset on glyphs) in headless
    Chromium against a real Voila server (benchmarks/bench_page_training.py's harness), against `learngene
    collective --dataset glyphs --run-dir R` in a subprocess; both the whole run (--page-tasks 0, default) or both
    N tasks (the page to task N+1 starting, the CLI with --tasks N). --page-scheduler hands the page a scheduler
    (an address, or "local" for a LocalCluster this script starts, as `make explore` would) through
    DASK_SCHEDULER_ADDRESS; without it the page does what it does by itself. Target: the page <= 1.15x the CLI.

Every measurement writes into a fresh store folder (removed after). Rounds alternate which side goes first; medians
over --rounds are printed with each ratio as its target reads: (a) one-process seconds over cluster seconds, (b)
page over CLI, (c) cluster over in-process. Timings are reported, never judged.
Usage: python benchmarks/bench_sweep.py [--rounds 1] [--parts sweep,run] [--page] [--run-dir DIR] [--workers 2]
(without --run-dir a `fast` glyphs run is trained once into $LEARNGENE_CACHE/bench-sweep, a few minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import forkserver
from pathlib import Path

import torch

from core.collective.config import preset
from core.data.datasets import load
from core.data.glyphs import cache_dir
from core.individual.config import individual_preset
from core.jobs import cluster
from core.jobs.cluster import Engine, start_engine
from core.jobs.execute import execute
from core.jobs.shared import THREADS_VARIABLE
from core.jobs.spec import CollectiveJob, FewShotJob, run_identity
from core.jobs.store import JobStore
from core.jobs.sweep import plan_sweep, run_plan
from core.jobs.sweep_spec import SweepSpec, collective_config, parse_spec
from core.jobs.workers import ADDRESS_VARIABLE

SPEC = """
[collective]
dataset = "glyphs"
preset = "smoke"
tasks = {tasks}
epochs = {epochs}
seed = {seeds}

[individual]
way = 5
shot = [1, 5]
tasks = 4
epochs = 4
methods = ["learngene", "scratch"]
"""


def fresh(prefix: str) -> Path:
    """A new empty folder for one measurement's store."""
    return Path(tempfile.mkdtemp(prefix=f"bench-sweep-{prefix}-"))


def load_average() -> str:
    """The machine's 1-minute load average, for the round lines (other programs share the cores)."""
    return f"{os.getloadavg()[0]:.1f}"


def timed(work: Callable[[], object]) -> float:
    """Wall seconds of `work()`."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def sweep_spec(seeds: int, tasks: int, epochs: int) -> SweepSpec:
    """The sweep's spec, written to a temporary file and parsed as `learngene sweep` would."""
    folder = fresh("spec")
    path = folder / "sweep.toml"
    path.write_text(SPEC.format(tasks=tasks, epochs=epochs, seeds=list(range(seeds))))
    try:
        return parse_spec(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def warm_data(spec: SweepSpec) -> None:
    """Render every collective run's glyphs into the disk cache, so neither side pays the first rendering."""
    for setting in spec.collective:
        config = collective_config(dict(setting.values), "collective")
        load(config.dataset, image_size=config.image_size, seed=config.seed)


def sequential(spec: SweepSpec, threads: int) -> tuple[float, int]:
    """Every job of the sweep one after another in this process; (seconds, jobs run)."""
    folder = fresh("sequential")
    store = JobStore.at(folder)
    try:
        started = time.perf_counter()
        plan = plan_sweep(spec, store, threads)
        jobs = [job for job, _ in plan.runs] + [cell.job for cell in plan.cells]
        ran = sum(not execute(job, store).reused for job in jobs)
        return time.perf_counter() - started, ran
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def share(spec: SweepSpec, folder: Path, part: int, parts: int) -> None:
    """Run every `parts`-th collective run of the sweep from the `part`-th, then their few-shot jobs, at 1 thread."""
    store = JobStore.at(folder)
    plan = plan_sweep(spec, store, 1)
    mine = {job.key for i, (job, _) in enumerate(plan.runs) if i % parts == part}
    jobs = [job for job, _ in plan.runs if job.key in mine] + [c.job for c in plan.cells if c.run.key in mine]
    for job in jobs:
        execute(job, store)


def processes(args: argparse.Namespace, workers: int) -> float:
    """The sweep split by collective run over `workers` plain processes of 1 thread started together; seconds."""
    folder = fresh("processes")
    command = [sys.executable, __file__, "--share-of", str(folder), "--seeds", str(args.seeds)]
    command += ["--tasks", str(args.tasks), "--epochs", str(args.epochs)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        started = time.perf_counter()
        children = [subprocess.Popen([*command, "--share", f"{i}/{workers}"], env=env) for i in range(workers)]
        if any(child.wait() != 0 for child in children):
            raise SystemExit("a process of the split sweep failed (its error is above)")
        return time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def on_cluster(
    spec: SweepSpec, workers: int, threads: int, profiler: bool = False, spawn: bool = False
) -> tuple[float, float, int]:
    """The sweep on a LocalCluster started for it (`profiler`: Dask's profiler on in its workers; `spawn`: workers
    spawned instead of forked); (seconds with start and close, seconds to start, jobs run)."""
    folder = fresh("cluster")
    ours, method = cluster.WORKER_CONFIG, cluster._start_method
    try:
        started = time.perf_counter()
        cluster.WORKER_CONFIG = {**ours, "distributed.worker.profile.enabled": profiler}
        if spawn:
            cluster._start_method = lambda: "spawn"
        engine = start_engine(JobStore.at(folder), workers=workers, threads=threads, dashboard=False)
        ready = time.perf_counter()
        try:
            plan = plan_sweep(spec, engine.store, engine.threads)
            ran = plan.left
            run_plan(plan, engine)
        finally:
            engine.close()
        return time.perf_counter() - started, ready - started, ran
    finally:
        cluster.WORKER_CONFIG, cluster._start_method = ours, method
        forkserver._forkserver._stop()
        shutil.rmtree(folder, ignore_errors=True)


# The cluster sides beside ours that --profiler-too and --spawn-too add: what each prints, and on_cluster's options.
CLUSTER_VARIANTS = {
    "profiled": ("cluster with Dask's profiler on", {"profiler": True}),
    "spawned": ("cluster of spawned workers", {"spawn": True}),
}


def bench_sweep(args: argparse.Namespace) -> None:
    """Part (a): the sweep on the cluster against one process, rounds alternating which goes first."""
    spec = sweep_spec(args.seeds, args.tasks, args.epochs)
    warm_data(spec)
    threads = args.sequential_threads or torch.get_num_threads()
    print(
        f"(a) sweep: {args.seeds} collective smoke runs ({args.tasks} tasks x {args.epochs} epochs) + "
        f"{args.seeds * len(spec.individual)} few-shot jobs; in-process with {threads} torch threads, cluster "
        f"{args.workers} workers x {args.threads} thread(s); glyphs cached in {cache_dir()}",
        flush=True,
    )
    alone, together, starts, single, split = [], [], [], [], []
    variants: dict[str, list[float]] = {side: [] for side in CLUSTER_VARIANTS}
    sides = ("sequential", "cluster") + (("single", "processes") if args.ceiling else ())
    sides += ("profiled",) if args.profiler_too else ()
    sides += ("spawned",) if args.spawn_too else ()
    for r in range(args.rounds):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            if side == "sequential":
                seconds, ran = sequential(spec, threads)
                alone.append(seconds)
                print(f"  round {r + 1}: one process, {ran} jobs: {seconds:.1f} s (load {load_average()})", flush=True)
            elif side in CLUSTER_VARIANTS:
                label, options = CLUSTER_VARIANTS[side]
                seconds, start, ran = on_cluster(spec, args.workers, args.threads, **options)
                variants[side].append(seconds)
                print(
                    f"  round {r + 1}: {label}, {ran} jobs: {seconds:.1f} s ({start:.1f} s of it starting; load "
                    f"{load_average()})",
                    flush=True,
                )
            elif side == "processes":
                seconds = processes(args, args.workers)
                split.append(seconds)
                print(
                    f"  round {r + 1}: {args.workers} plain processes of 1 thread: {seconds:.1f} s (load "
                    f"{load_average()})",
                    flush=True,
                )
            elif side == "single":
                seconds, ran = sequential(spec, 1)
                single.append(seconds)
                print(
                    f"  round {r + 1}: one process at 1 thread, {ran} jobs: {seconds:.1f} s (load {load_average()})",
                    flush=True,
                )
            else:
                seconds, start, ran = on_cluster(spec, args.workers, args.threads)
                together.append(seconds)
                starts.append(start)
                print(
                    f"  round {r + 1}: cluster, {ran} jobs: {seconds:.1f} s ({start:.1f} s of it starting; "
                    f"load {load_average()})",
                    flush=True,
                )
    one, many = statistics.median(alone), statistics.median(together)
    print(
        f"(a) sweep, medians of {args.rounds}: one process {one:.1f} s, cluster {many:.1f} s (start-up "
        f"{statistics.median(starts):.1f} s); cluster {one / many:.2f}x faster (target >= 1.4x)",
        flush=True,
    )
    if variants["profiled"]:
        on = statistics.median(variants["profiled"])
        print(
            f"(a) with Dask's profiler on in the workers: {on:.1f} s, {one / on:.2f}x faster than one process; "
            f"{on / many:.2f}x the cluster's time without it",
            flush=True,
        )
    if variants["spawned"]:
        born = statistics.median(variants["spawned"])
        print(
            f"(a) with spawned workers: {born:.1f} s, {one / born:.2f}x faster than one process; the forked workers' "
            f"cluster takes {many / born:.2f}x its time",
            flush=True,
        )
    if single:
        alone_one = statistics.median(single)
        print(
            f"(a) ceiling: one process at 1 thread {alone_one:.1f} s, so {args.workers} workers x 1 thread can be at "
            f"most {args.workers * alone_one / one:.2f}x faster than one process at {threads} threads (reached: "
            f"{one / many:.2f}x, {100 * (one / many) / (args.workers * alone_one / one):.0f}% of it)",
            flush=True,
        )
        plain = statistics.median(split)
        print(
            f"(a) {args.workers} plain processes without Dask: {plain:.1f} s, {one / plain:.2f}x faster than one "
            f"process; the cluster takes {many / plain:.2f}x their time",
            flush=True,
        )


def fast_run(run_dir: str | None) -> Path:
    """The given run, or a `fast` glyphs run trained once into the cache (reused by later invocations)."""
    if run_dir:
        return Path(run_dir)
    cache = Path(os.environ.get("LEARNGENE_CACHE") or Path(tempfile.gettempdir()) / "learngene-cache")
    job = CollectiveJob(preset("fast"), threads=1)
    started = time.perf_counter()
    outcome = execute(job, JobStore.at(cache / "bench-sweep"))
    if not outcome.reused:
        print(f"trained a fast run into {outcome.path} in {time.perf_counter() - started:.1f} s", flush=True)
    return Path(outcome.path)


def default_run(run: Path, threads: int, tag: str) -> FewShotJob:
    """The individual panel's default Run as a job; `tag` in run_id gives it its own key for the same work."""
    return FewShotJob(
        run_dir=str(run),
        run_id=f"{run_identity(run)}-{tag}",
        config=individual_preset("fast"),
        way=5,
        shot=1,
        tasks=20,
        threads=threads,
    )


def submitted(engine: Engine, job: FewShotJob) -> float:
    """Seconds from submitting a job to the cluster to its outcome in hand."""
    return timed(lambda: engine.outcome(engine.submit(job)))


def bench_run(args: argparse.Namespace) -> None:
    """Part (c): the default Run in this process against the same job through Engine.submit on a started cluster."""
    run = fast_run(args.run_dir)
    folder = fresh("run")
    store = JobStore.at(folder / "in-process")
    engine = start_engine(JobStore.at(folder / "cluster"), workers=args.workers, threads=args.threads, dashboard=False)
    try:
        threads = args.run_threads
        print(
            f"(c) run: default Run (5-way 1-shot, 20 tasks, learngene + scratch) on {run}, {threads} torch "
            f"thread(s) per job; cluster {args.workers} workers x {args.threads} thread(s)",
            flush=True,
        )
        warm = timed(lambda: execute(default_run(run, threads, "warm"), store))
        cold = submitted(engine, default_run(run, threads, "cold"))
        print(f"  first: in process {warm:.1f} s, first submit to the fresh cluster {cold:.1f} s", flush=True)
        local, remote = [], []
        for r in range(args.rounds):
            for side in ("in-process", "cluster") if r % 2 == 0 else ("cluster", "in-process"):
                job = default_run(run, threads, f"{side}-{r}")
                if side == "in-process":
                    local.append(timed(lambda job=job: execute(job, store)))
                else:
                    remote.append(submitted(engine, job))
                seconds = (local if side == "in-process" else remote)[-1]
                print(f"  round {r + 1}: {side} {seconds:.1f} s (load {load_average()})", flush=True)
    finally:
        engine.close()
        shutil.rmtree(folder, ignore_errors=True)
    here, there = statistics.median(local), statistics.median(remote)
    print(
        f"(c) run, medians of {args.rounds}: in process {here:.2f} s, through the cluster {there:.2f} s; "
        f"cluster {there / here:.2f}x the in-process time (target <= 1.2x; first submit {cold / warm:.2f}x)",
        flush=True,
    )


def cli_training(tasks: int, threads: int | None) -> float:
    """Wall seconds of `learngene collective --dataset glyphs` (fast preset) in a fresh process, into a fresh folder."""
    folder = fresh("cli")
    command = [sys.executable, "-m", "core.cli", "collective", "--dataset", "glyphs", "--run-dir", str(folder / "run")]
    command += ["--tasks", str(tasks)] if tasks else []
    command += ["--threads", str(threads)] if threads else []
    try:
        return timed(lambda: subprocess.run(command, check=True, capture_output=True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_page(args: argparse.Namespace) -> None:
    """Part (b): the first screen's Train in the browser against the CLI, rounds alternating which goes first."""
    from bench_page_training import one_round
    from playwright.sync_api import sync_playwright
    from voila_page import CHROMIUM, CHROMIUM_ARGS

    engine = None
    if args.page_scheduler == "local":
        engine = start_engine(
            JobStore.at(fresh("page-cluster")), workers=args.workers, threads=args.threads, dashboard=False
        )
        os.environ[ADDRESS_VARIABLE] = engine.client.scheduler.address
        os.environ[THREADS_VARIABLE] = str(engine.threads)  # as explorer.server tells Voila's kernels
    elif args.page_scheduler:
        os.environ[ADDRESS_VARIABLE] = args.page_scheduler
    what = f"{args.page_tasks} tasks" if args.page_tasks else "whole 40-task run"
    scheduler = os.environ.get(ADDRESS_VARIABLE, "none given")
    print(f"(b) page: fast preset, {what}; page scheduler: {scheduler}; CLI threads: {args.cli_threads}", flush=True)
    page, cli = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                for side in ("page", "cli") if r % 2 == 0 else ("cli", "page"):
                    if side == "page":
                        seconds, status = one_round(browser, "auto", "fast", args.page_tasks)
                        page.append(seconds)
                        print(
                            f"  round {r + 1}: page {seconds:.1f} s ({status.strip()}; load {load_average()})",
                            flush=True,
                        )
                    else:
                        cli.append(cli_training(args.page_tasks, args.cli_threads))
                        print(f"  round {r + 1}: CLI {cli[-1]:.1f} s (load {load_average()})", flush=True)
            browser.close()
    finally:
        if engine is not None:
            engine.close()
    on_page, alone = statistics.median(page), statistics.median(cli)
    print(
        f"(b) page, medians of {args.rounds}: page {on_page:.1f} s, CLI {alone:.1f} s; page {on_page / alone:.2f}x "
        "the CLI (target <= 1.15x)",
        flush=True,
    )


def main() -> None:
    """Run the chosen parts and print their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds per part (medians over them)")
    parser.add_argument("--parts", default="sweep,run", help="comma-separated: sweep (a), run (c), page (b)")
    parser.add_argument("--page", action="store_true", help="also run part (b), the page against the CLI")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cluster job in (a)")
    parser.add_argument(
        "--sequential-threads", type=int, help="(a): torch threads of the in-process loop (default: torch's)"
    )
    parser.add_argument(
        "--ceiling", action="store_true", help="(a): also time the in-process loop at 1 thread (the cluster's ceiling)"
    )
    parser.add_argument(
        "--profiler-too", action="store_true", help="(a): also time the cluster with Dask's profiler on in its workers"
    )
    parser.add_argument(
        "--spawn-too", action="store_true", help="(a): also time the cluster with spawned workers (Dask's default)"
    )
    parser.add_argument("--seeds", type=int, default=4, help="(a): collective seeds (jobs: 3 per seed)")
    parser.add_argument("--tasks", type=int, default=6, help="(a): tasks of each collective smoke run")
    parser.add_argument("--epochs", type=int, default=3, help="(a): epochs per task of each collective run")
    parser.add_argument("--run-dir", help="(c): the run the default Run reads (default: a cached fast run)")
    parser.add_argument("--run-threads", type=int, default=1, help="(c): torch threads of the Run job, both sides")
    parser.add_argument("--page-tasks", type=int, default=0, help="(b): time this many tasks (0: the whole run)")
    parser.add_argument("--page-scheduler", help='(b): scheduler address for the page, or "local" to start one')
    parser.add_argument("--cli-threads", type=int, help="(b): --threads of the CLI (default: torch's)")
    parser.add_argument("--share", help=argparse.SUPPRESS)  # "I/W": this process runs share I of W (--ceiling)
    parser.add_argument("--share-of", help=argparse.SUPPRESS)  # the store folder the shares write into
    args = parser.parse_args()
    if args.share:
        part, parts = (int(n) for n in args.share.split("/"))
        share(sweep_spec(args.seeds, args.tasks, args.epochs), Path(args.share_of), part, parts)
        return
    if args.ceiling and args.threads != 1:
        parser.error("--ceiling is the bound for workers of 1 thread: leave --threads at 1")
    parts = set(args.parts.split(",")) | ({"page"} if args.page else set())
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if "sweep" in parts:
        bench_sweep(args)
    if "run" in parts:
        bench_run(args)
    if "page" in parts:
        bench_page(args)


if __name__ == "__main__":
    main()
