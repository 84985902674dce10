"""Peak resident memory of `learngene collective --preset fast`, of the explorer app, of a kernel after its jobs, and
of Voila per visitor.

The first two are measured in fresh child processes that report their own peak RSS (target: under 2 GiB each).
The third builds the app in a fresh process connected to a cluster this script starts (as `make explore` does),
measures it idle, presses Run and then Size sweep (the jobs train on the cluster's workers) and measures it again:
a kernel that has finished its jobs should hold no more than an idle one plus what its charts show.
Then Voila serves the app over the cached run, as `make explore` does, and N visitors load the page one after the
other (plain HTTP requests: each page load starts a kernel that builds the app, then the visitor leaves). Measured
with culling off (Voila's default: every kernel stays until the server stops) and on (`make explore`'s settings,
with a short idle time so the benchmark need not wait ten minutes): RSS and PSS (shared pages split between the
processes sharing them) of each kernel, and the total after the visits and again after the idle time.
Usage: python benchmarks/bench_memory.py [--run-dir DIR] [--visitors N] [--parts peak,jobs,voila]
(a fast glyphs run is trained into DIR)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from voila_page import start_voila

COLLECTIVE = """
import resource, sys
from core.cli.main import main
main(["collective", "--preset", "fast", "--run-dir", sys.argv[1], "--quiet"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

APP = """
import resource, sys
import explorer
explorer.build(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
AFTER_JOBS = """
import gc, sys, psutil
import explorer
app = explorer.build(sys.argv[1])
me = psutil.Process()
idle = me.memory_full_info()
for sweep in (False, True):
    assert app.individual.start(sweep=sweep) and app.individual.jobs.join(3600), app.individual.status.value
gc.collect()
after = me.memory_full_info()
print(idle.rss, idle.pss, after.rss, after.pss, app.individual.progress.value)
"""
CULL_IDLE_S = 20


def peak_mib(code: str, run_dir: Path) -> float:
    """Run `code` in a fresh interpreter and return the peak RSS it reports, in MiB."""
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def after_jobs(run_dir: Path) -> None:
    """Memory of a kernel-like process before and after its Run and Size sweep on a shared cluster (fresh results)."""
    from core.jobs.cluster import local_cluster
    from core.jobs.workers import ADDRESS_VARIABLE

    shutil.rmtree(run_dir.parent / ".results", ignore_errors=True)
    cluster = local_cluster(dashboard=False)
    try:
        env = dict(os.environ, **{ADDRESS_VARIABLE: cluster.scheduler_address})
        out = subprocess.run(
            [sys.executable, "-c", AFTER_JOBS, str(run_dir)], check=True, capture_output=True, text=True, env=env
        ).stdout
    finally:
        cluster.close()
    idle_rss, idle_pss, rss, pss, trainings = (float(v) for v in out.strip().splitlines()[-1].split())
    print(
        f"app kernel idle                   : RSS {idle_rss / 2**20:7.0f} MiB, PSS {idle_pss / 2**20:7.0f} MiB\n"
        f"after Run + Size sweep ({trainings:.0f} trainings on the cluster): RSS {rss / 2**20:.0f} MiB "
        f"({(rss - idle_rss) / 2**20:+.0f}), PSS {pss / 2**20:.0f} MiB ({(pss - idle_pss) / 2**20:+.0f})"
    )


def kernel_memory(server: psutil.Process) -> dict[int, tuple[float, float]]:
    """Kernel pid -> (RSS, PSS) in MiB of every kernel the server started."""
    found = {}
    for child in server.children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                info = child.memory_full_info()
                found[child.pid] = (info.rss / 2**20, info.pss / 2**20)
        except psutil.NoSuchProcess:
            continue
    return found


def serve(runs: Path, cull: bool, log: Path) -> tuple[subprocess.Popen, str]:
    """Voila on the app notebook with `make explore`'s options; culling on or off."""
    options = [
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_S if cull else 0}",
        "--MappingKernelManager.cull_interval=2",
        "--MappingKernelManager.cull_connected=False",
    ]
    return start_voila(dict(os.environ, LEARNGENE_RUNS=str(runs)), log, options=options)


def visit(runs: Path, visitors: int, cull: bool) -> None:
    """Load the page `visitors` times and print the kernels' memory after the visits and after the idle time."""
    proc, url = serve(runs, cull, Path(tempfile.gettempdir()) / f"bench-memory-voila-cull-{cull}.log")
    try:
        server = psutil.Process(proc.pid)
        time.sleep(10)  # the pre-heated kernel
        seen: dict[int, tuple[float, float]] = {}
        for _ in range(visitors):
            urllib.request.urlopen(url, timeout=600).read()
            seen.update(kernel_memory(server))
        time.sleep(5)
        now = kernel_memory(server)
        seen.update(now)
        rss, pss = [v[0] for v in seen.values()], [v[1] for v in seen.values()]
        label = f"culling after {CULL_IDLE_S} s idle" if cull else "culling off (Voila's default)"
        print(
            f"Voila, {label}: {len(seen)} kernels seen for {visitors} page loads; per kernel RSS median "
            f"{statistics.median(rss):.0f} MiB ({min(rss):.0f}-{max(rss):.0f}), PSS median {statistics.median(pss):.0f}"
            f" MiB; after the visits {len(now)} kernels, {sum(v[0] for v in now.values()):.0f} MiB RSS, "
            f"{sum(v[1] for v in now.values()):.0f} MiB PSS"
        )
        time.sleep(CULL_IDLE_S + 10)
        later = kernel_memory(server)
        print(
            f"  {CULL_IDLE_S + 10} s later: {len(later)} kernels, {sum(v[0] for v in later.values()):.0f} MiB RSS, "
            f"{sum(v[1] for v in later.values()):.0f} MiB PSS"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, default=Path(tempfile.gettempdir()) / "learngene-bench-memory" / "fast-glyphs"
    )
    parser.add_argument("--visitors", type=int, default=10, help="page loads per server (default 10)")
    parser.add_argument("--parts", default="peak,jobs,voila", help="comma-separated: peak, jobs, voila")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "peak" in parts or not (args.run_dir / "manifest.json").is_file():
        print(
            f"learngene collective --preset fast : peak RSS {peak_mib(COLLECTIVE, args.run_dir):7.0f} MiB "
            "(target < 2048)"
        )
        print(f"explorer app on the cached run     : peak RSS {peak_mib(APP, args.run_dir):7.0f} MiB (target < 2048)")
    if "jobs" in parts:
        after_jobs(args.run_dir)
    if "voila" in parts:
        for cull in (False, True):
            visit(args.run_dir.parent, args.visitors, cull)


if __name__ == "__main__":
    main()
