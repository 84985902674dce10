"""`learngene sweep` from the shell against the same jobs one after another in one fresh process, side by side.

benchmarks/bench_sweep.py's part (a) times the one-process loop inside a process that has already imported torch
and the engine, against a cluster that starts its workers (and their fork server's imports) inside the timing. A
user runs either from the shell, and both pay their imports. This script times both that way: the command
`learngene sweep SPEC --out DIR --workers W` (its 2 x 1-thread LocalCluster, its fork server started before its own
imports, its tables written at the end), against `python THIS --sequential SPEC DIR`, a fresh process that imports
the engine, plans the same sweep at torch's default thread count (2 on 2 cores) and executes every job in turn
(core.jobs.execute). The spec is bench_sweep.py's (default real size: 4 `smoke` runs of 34 tasks x 15 epochs and 8
few-shot jobs). Rounds alternate which side goes first; each side writes into a fresh folder. Job keys include the
thread count, so the two sides run different, equally sized jobs. Timings are reported, never judged.
Usage: python benchmarks/bench_sweep_shell.py [--rounds 2] [--seeds 4] [--tasks 34] [--epochs 15] [--workers 2]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sequential(spec: Path, out: Path) -> None:
    """Every job of the sweep one after another in this process, at torch's default thread count."""
    import torch

    from core.jobs.execute import execute
    from core.jobs.store import JobStore
    from core.jobs.sweep import plan_sweep
    from core.jobs.sweep_spec import parse_spec

    store = JobStore.at(out)
    plan = plan_sweep(parse_spec(spec), store, torch.get_num_threads())
    for job in [job for job, _ in plan.runs] + [cell.job for cell in plan.cells]:
        execute(job, store)


def timed_command(command: list[str]) -> float:
    """Wall seconds of a command run from this directory, as from the shell; stops the benchmark if it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    """Parse the options, run the rounds, print each side and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4, help="collective seeds (3 jobs per seed)")
    parser.add_argument("--tasks", type=int, default=34, help="tasks of each collective smoke run")
    parser.add_argument("--epochs", type=int, default=15, help="epochs per task of each collective run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the sweep's LocalCluster")
    parser.add_argument("--sequential", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequential:
        sequential(Path(args.sequential[0]), Path(args.sequential[1]))
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_sweep import SPEC, sweep_spec, warm_data

    warm_data(sweep_spec(args.seeds, args.tasks, args.epochs))
    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-shell-"))
    spec = folder / "sweep.toml"
    spec.write_text(SPEC.format(tasks=args.tasks, epochs=args.epochs, seeds=list(range(args.seeds))))
    learngene = [sys.executable, "-m", "core.cli", "sweep", str(spec), "--workers", str(args.workers), "--out"]
    sides = {
        "one process": lambda out: [sys.executable, __file__, "--sequential", str(spec), str(out)],
        "learngene sweep": lambda out: [*learngene, str(out)],
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    print(
        f"{args.seeds} collective smoke runs ({args.tasks} tasks x {args.epochs} epochs) + {2 * args.seeds} few-shot "
        f"jobs, each side a fresh process from the shell; {os.cpu_count()} cores"
    )
    try:
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                out = folder / f"{name.replace(' ', '-')}-{round_}"
                load = os.getloadavg()[0]
                seconds = timed_command(sides[name](out))
                times[name].append(seconds)
                print(f"  round {round_ + 1}: {name}: {seconds:.1f} s (load {load:.1f})", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    one, cluster = (statistics.median(times[name]) for name in sides)
    print(
        f"medians of {args.rounds}: one process {one:.1f} s, learngene sweep {cluster:.1f} s; the sweep "
        f"{one / cluster:.2f}x faster (target >= 1.4x)"
    )


if __name__ == "__main__":
    main()
