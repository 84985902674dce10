"""The CPU that Dask's own bookkeeping takes from training: our LocalCluster's intervals against Dask's defaults.

Side by side, rounds alternating which goes first, each side in a fresh process: a 2-worker LocalCluster
(core.jobs.cluster.local_cluster) with core.jobs.cluster.QUIET_CONFIG (event-loop tick 1 s, system monitor 5 s,
memory monitor 1 s) against the same cluster at Dask's defaults (20 ms, 500 ms, 100 ms). For each: the CPU per
second, idle over --idle seconds, of the process that holds the scheduler, the nannies and the client (this one) and
of each worker; then --seeds `smoke` collective jobs of --tasks tasks x 15 epochs on the cluster, their wall
seconds and the CPU seconds each process spent on them. On 2 cores every CPU second the scheduler's process spends
is taken from a worker's training. Job events travel in batches on both sides
(core.jobs.cluster.EventBatches). Timings are reported, never judged.
Usage: python benchmarks/bench_dask_overhead.py [--rounds 2] [--idle 10] [--seeds 2] [--tasks 17]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(process) -> float:  # noqa: ANN001 - a psutil.Process
    """User and system CPU seconds a process has used."""
    times = process.cpu_times()
    return times.user + times.system


def one_side(quiet: bool, idle: float, seeds: int, tasks: int) -> dict:
    """Start the cluster (our intervals or Dask's), measure it idle, then run the jobs; what each process used."""
    import psutil

    from core.collective.config import preset
    from core.jobs import cluster
    from core.jobs.cluster import start_engine
    from core.jobs.spec import CollectiveJob
    from core.jobs.store import JobStore

    if not quiet:
        cluster.WORKER_CONFIG = {k: v for k, v in cluster.WORKER_CONFIG.items() if k not in cluster.QUIET_CONFIG}
        cluster.QUIET_CONFIG = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-dask-overhead-"))
    try:
        jobs = [CollectiveJob(preset("smoke", tasks=tasks, epochs=15, seed=seed), threads=1) for seed in range(seeds)]
        engine = start_engine(JobStore.at(folder), workers=2, threads=1, dashboard=False)
        try:
            me = psutil.Process()
            time.sleep(2.0)  # past the workers' start
            workers = [psutil.Process(pid) for pid in engine.client.run(os.getpid).values()]
            before = [cpu_seconds(p) for p in (me, *workers)]
            time.sleep(idle)
            idle_rates = [(cpu_seconds(p) - b) / idle for p, b in zip((me, *workers), before)]
            before = [cpu_seconds(p) for p in (me, *workers)]
            started = time.perf_counter()
            for future in [engine.submit(job) for job in jobs]:
                future.result()
            wall = time.perf_counter() - started
            busy = [cpu_seconds(p) - b for p, b in zip((me, *workers), before)]
        finally:
            engine.close()
        return {
            "idle_main": idle_rates[0],
            "idle_workers": idle_rates[1:],
            "wall": wall,
            "busy_main": busy[0],
            "busy_workers": busy[1:],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def side(quiet: bool, args: argparse.Namespace) -> dict:
    """One side in a fresh process (its own fork server and Dask config)."""
    command = [sys.executable, __file__, "--side", "quiet" if quiet else "defaults", "--idle", str(args.idle)]
    command += ["--seeds", str(args.seeds), "--tasks", str(args.tasks)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a side failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse the options, run the rounds, print each side and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured idle")
    parser.add_argument("--seeds", type=int, default=2, help="collective runs in the sweep (2 workers)")
    parser.add_argument("--tasks", type=int, default=17, help="tasks of each smoke run (15 epochs each)")
    parser.add_argument("--side", choices=["quiet", "defaults"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(one_side(args.side == "quiet", args.idle, args.seeds, args.tasks)))
        return
    names = {True: "ours (QUIET_CONFIG)", False: "Dask's defaults"}
    results: dict[bool, list[dict]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for quiet in (True, False) if round_ % 2 == 0 else (False, True):
            r = side(quiet, args)
            results[quiet].append(r)
            print(
                f"  round {round_ + 1}, {names[quiet]}: idle CPU {1000 * r['idle_main']:.0f} ms/s in the scheduler's "
                f"process, {', '.join(f'{1000 * w:.0f}' for w in r['idle_workers'])} ms/s in the workers; jobs "
                f"{r['wall']:.1f} s, CPU {r['busy_main']:.2f} s in the scheduler's process, "
                f"{', '.join(f'{w:.1f}' for w in r['busy_workers'])} s in the workers",
                flush=True,
            )
    keys = ("idle_main", "wall", "busy_main")
    med = {quiet: {k: statistics.median(r[k] for r in rs) for k in keys} for quiet, rs in results.items()}
    print(
        f"medians of {args.rounds}: idle CPU in the scheduler's process {1000 * med[True]['idle_main']:.0f} against "
        f"{1000 * med[False]['idle_main']:.0f} ms/s; during the jobs {med[True]['busy_main']:.2f} against "
        f"{med[False]['busy_main']:.2f} s; jobs {med[True]['wall']:.1f} against {med[False]['wall']:.1f} s "
        f"({med[False]['wall'] / med[True]['wall']:.2f}x faster with ours)"
    )


if __name__ == "__main__":
    main()
