"""Few-shot re-run cost on a `fast` collective run: the default re-run and the full baseline + size sweep.

Targets on 2 CPU cores: the default re-run (5 target tasks, 5-way 10-shot, learngene and scratch) <= 3 s, and
the full baseline sweep <= 60 s. Prints medians over rounds and the split between data, training and evaluation.
Usage: python benchmarks/bench_individual.py [--run-dir DIR] [--rounds 3] [--skip-sweep]
(without --run-dir a `fast` run is trained once into $LEARNGENE_CACHE/bench-runs/fast, about a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from core import fewshot
from core.collective.config import preset
from core.collective.runs import open_run
from core.collective.training import train_collective
from core.individual.config import individual_preset
from core.individual.evaluation import evaluate
from core.individual.sweep import sweep
from core.individual.targets import make_targets, run_imageset
from core.learngene.extraction import extract
from core.learngene.selection import select_for_run


class Split:
    """Wall time spent in training and in testing (BN recalibration + accuracy), by wrapping fewshot's functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._originals = {name: getattr(fewshot, name) for name in ("train", "recalibrate_bn", "accuracy")}

    def __enter__(self) -> Split:
        for name, original in self._originals.items():
            setattr(fewshot, name, self._timed("training" if name == "train" else "evaluation", original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(fewshot, name, original)

    def _timed(self, label, function):
        def wrapped(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return wrapped


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


def prepare(path: Path):
    """Open the run, select and extract the default learngene, and draw the 5 default target tasks."""
    run = open_run(path)
    gene = extract(run, select_for_run(run))
    config = individual_preset("fast")
    targets = make_targets(run, run_imageset(run), way=5, shot=10, query=config.query, tasks=5, seed=config.seed)
    return run, gene, config, targets


def default_rerun(path: Path) -> dict[str, float]:
    """One default re-run in this process: open run, select, extract, targets, learngene + scratch on 5 tasks."""
    start = time.perf_counter()
    run, gene, config, targets = prepare(path)
    data = time.perf_counter() - start
    with Split() as split:
        rows = evaluate(run, gene, config, targets=targets)
    total = time.perf_counter() - start
    accuracy = {r["method"]: r["mean_accuracy"] for r in rows}
    return {
        "total": total,
        "data": data,
        "training": split.seconds["training"],
        "evaluation": split.seconds["evaluation"],
        **accuracy,
    }


def full_sweep(path: Path) -> dict[str, float]:
    """Every baseline plus the size sweep on the same 5 target tasks."""
    start = time.perf_counter()
    run, gene, config, targets = prepare(path)
    data = time.perf_counter() - start
    with Split() as split:
        rows = evaluate(run, gene, config, targets=targets, baselines=True)
        after_baselines = time.perf_counter() - start
        points = sweep(run, gene, config, targets, known=rows)
    total = time.perf_counter() - start
    for row in rows + points:
        print(
            f"    {row['method']:20} {row.get('size', ''):14} {row['layers']:18} params {row['params']:>9,}  acc "
            f"{row['mean_accuracy']:.3f}  {row['seconds']:.2f} s"
        )
    return {
        "total": total,
        "baselines": after_baselines,
        "data": data,
        "training": split.seconds["training"],
        "evaluation": split.seconds["evaluation"],
    }


def cli_wall(path: Path) -> float:
    """Wall time of `learngene individual --run-dir PATH --quiet` in a fresh process (imports included)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "core.cli", "individual", "--run-dir", str(path), "--quiet"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def report(label: str, samples: list[dict[str, float]]) -> None:
    keys = samples[0].keys()
    parts = [f"{k} {statistics.median(s[k] for s in samples):.3f} (min {min(s[k] for s in samples):.3f})" for k in keys]
    print(f"{label}, median of {len(samples)}: " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="an existing fast run (default: train one into the cache)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    path = fast_run(args.run_dir)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    default_rerun(path)  # warm the dataset cache and the allocator
    report("default re-run, in process [s]", [default_rerun(path) for _ in range(args.rounds)])
    report("default re-run, CLI process [s]", [{"wall": cli_wall(path)} for _ in range(args.rounds)])
    if not args.skip_sweep:
        report("full baseline + size sweep [s]", [full_sweep(path)])


if __name__ == "__main__":
    main()
