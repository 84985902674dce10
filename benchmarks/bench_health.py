"""Loss of plasticity, side by side: the paper's shared head against the default presets' remedy, on glyphs.

Trains two `fast` collective runs of 40 tasks in one process (the paper-style shared head with the paper's optimiser
settings of the old default, and the default preset) and prints, every fifth task, the training accuracy on the
task's own images, the effective rank of the penultimate features, the fraction of dead fc1 units and the loss of
the task's first batch (the spike when a new task starts). Then 5-way 1-shot nearest-centroid accuracy on the
collective features of each run's last checkpoint (20 novel-class tasks) against scratch.
Usage: python benchmarks/bench_health.py [--tasks 40] [--dataset glyphs] [--root DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from core.collective.config import preset
from core.collective.health import health_rows
from core.collective.training import train_collective
from core.individual.baselines import nearest_centroid_method
from core.individual.config import individual_preset
from core.individual.methods import individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.targets import make_targets, run_imageset
from core.learngene.extraction import extract
from core.learngene.selection import select_for_run

VARIANTS = {
    "shared head (paper, momentum 0.9, lr 0.005)": dict(head="shared", momentum=0.9, lr=0.005, precise_bn=False),
    "default (per-task head, momentum 0.5, lr 0.01)": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--dataset", default="glyphs")
    parser.add_argument("--root", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tables, transfer = {}, {}
    for name, overrides in VARIANTS.items():
        started = time.perf_counter()
        config = preset("fast", dataset=args.dataset, tasks=args.tasks, **overrides)
        run = train_collective(config, tempfile.mkdtemp(prefix="bench-health-"), root=args.root)
        tables[name] = health_rows(run.metrics())
        imageset = run_imageset(run, args.root)
        targets = make_targets(run, imageset, way=5, shot=1, query=10, tasks=20, seed=0)
        ind = individual_preset("fast")
        gene = extract(run, select_for_run(run))
        methods = [
            nearest_centroid_method(run.load_net(run.last_task), ind),
            individual_method("scratch", fitted_spec(gene, 5, ind), ind, None),
        ]
        transfer[name] = {r["method"]: r["mean_accuracy"] for r in run_methods(methods, targets)}
        print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
    shown = range(0, args.tasks, 5)
    print(f"\n{'task':28}" + "".join(f"{t:>7}" for t in shown))
    for key, label in (
        ("train_accuracy", "train accuracy"),
        ("feature_rank", "feature rank"),
        ("dead_fc1", "dead fc1 units"),
        ("first_loss", "first-batch loss"),
    ):
        for name, rows in tables.items():
            values = [r["dead_fraction"]["fc1"] if key == "dead_fc1" else r[key] for r in rows]
            cells = "".join(f"{values[t]:>7.2f}" if key != "feature_rank" else f"{values[t]:>7d}" for t in shown)
            print(f"{label + ', ' + name.split(' (')[0]:28}{cells}")
    print("\n5-way 1-shot, 20 novel-class tasks, after the last task:")
    for name, scores in transfer.items():
        ratio = scores["nearest-centroid"] - scores["scratch"]
        print(
            f"  {name}: nearest-centroid {scores['nearest-centroid']:.3f}, scratch {scores['scratch']:.3f}, "
            f"difference {ratio:+.3f}"
        )


if __name__ == "__main__":
    main()
