"""Few-shot re-run cost on a `fast` collective run: the explorer's default re-run, tasks side by side or one at a time.

The default re-run is 5-way 1-shot on 20 target tasks, learngene and scratch (40 trainings). Each round runs it
with target tasks trained 10 side by side (grouped convolutions, `IndividualConfig.stack`) and one at a time,
alternating, and reports the medians, their ratio, and how far the accuracies of the two differ (grouped
convolutions sum in another order, so the trajectories can part after many steps). Then the same for
10-shot, a fresh `learngene individual` process (imports and data included), and the full baselines + size sweep.
Usage: python benchmarks/bench_individual.py [--run-dir DIR] [--rounds 3] [--shots 1,10] [--skip-sweep] [--threads 1]
(without --run-dir a `fast` run is trained once into $LEARNGENE_CACHE/bench-runs/fast, a few minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.collective.config import preset
from core.collective.runs import open_run
from core.collective.training import train_collective
from core.individual.config import individual_preset
from core.individual.evaluation import plan_few_shot
from core.learngene.extraction import extract
from core.learngene.selection import select_for_run


def fast_run(run_dir: str | None) -> Path:
    """The given run, or a `fast` run trained once into the cache."""
    if run_dir:
        return Path(run_dir)
    cache = Path(os.environ.get("LEARNGENE_CACHE") or Path(tempfile.gettempdir()) / "learngene-cache")
    path = cache / "bench-runs" / "fast"
    started = time.perf_counter()
    train_collective(preset("fast"), path)
    print(f"fast run at {path} (ready in {time.perf_counter() - started:.1f} s)")
    return path


def rerun(path: Path, shot: int, stack: int, baselines: bool = False, sizes: bool = False) -> tuple[float, list]:
    """One re-run in this process (open, select, extract, targets, train); returns (seconds, per-task accuracies)."""
    start = time.perf_counter()
    run = open_run(path)
    gene = extract(run, select_for_run(run))
    config = dataclasses.replace(individual_preset("fast"), stack=stack)
    plan = plan_few_shot(run, gene, config, way=5, shot=shot, tasks=20, baselines=baselines, sizes=sizes)
    rows, points = plan.execute()
    return time.perf_counter() - start, [r["task_accuracies"] for r in rows + points]


def cli_wall(path: Path) -> float:
    """Wall time of the default re-run as a fresh `learngene individual` process (imports included)."""
    start = time.perf_counter()
    args = ["individual", "--run-dir", str(path), "--shot", "1", "--tasks", "20", "--quiet"]
    subprocess.run([sys.executable, "-m", "core.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def side_by_side(path: Path, shot: int, rounds: int, **kwargs: bool) -> None:
    """Alternate stacked and one-at-a-time re-runs; print medians, the ratio, and how far the accuracies differ."""
    stacked, alone, gaps, means = [], [], [], []
    for _ in range(rounds):
        a, acc_a = rerun(path, shot, 10, **kwargs)
        b, acc_b = rerun(path, shot, 1, **kwargs)
        stacked.append(a)
        alone.append(b)
        gaps += [abs(x - y) for row_a, row_b in zip(acc_a, acc_b) for x, y in zip(row_a, row_b)]
        means += [(statistics.mean(row_a), statistics.mean(row_b)) for row_a, row_b in zip(acc_a, acc_b)]
    label = f"{shot}-shot" + (" + baselines + sizes" if kwargs else "")
    one, ten = statistics.median(alone), statistics.median(stacked)
    worst_mean = max(abs(a - b) for a, b in means)
    print(
        f"{label}: one at a time {one:.2f} s, 10 side by side {ten:.2f} s, speed-up {one / ten:.2f}x (medians of "
        f"{rounds}); per-task accuracies equal in {sum(gap < 1e-9 for gap in gaps)}/{len(gaps)}, at most "
        f"{max(gaps):.3f} apart; row means at most {worst_mean:.3f} apart"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="an existing fast run (default: train one into the cache)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--shots", default="1,10", help="comma-separated shots to time side by side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = fast_run(args.run_dir)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rerun(path, 1, 10)  # warm the dataset cache and the allocator
    for shot in (int(s) for s in args.shots.split(",")):
        side_by_side(path, shot, args.rounds)
    walls = [cli_wall(path) for _ in range(args.rounds)]
    print(f"default re-run as a fresh CLI process: median {statistics.median(walls):.2f} s")
    if not args.skip_sweep:
        side_by_side(path, 1, 1, baselines=True, sizes=True)


if __name__ == "__main__":
    main()
