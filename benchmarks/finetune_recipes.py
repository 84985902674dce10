"""Collective fine-tuning recipes against nearest centroids on the same target tasks of every run of a sweep folder.

For each run (its extraction checkpoint, as the sweep's few-shot jobs use it), draws 5-way target tasks with a task
seed of its own (--task-seed, default 7: other tasks than the results tables' seed 0, so that a recipe is chosen on
tasks it is not reported on) and prints, per recipe, its accuracy and its difference to cosine nearest centroids on
the conv features, then per recipe the mean paired difference over runs with its 95% t-interval and the runs above.
Recipes: the head on the conv features (`collective-finetune` today) or on the hidden fc layer's output (the recipe
before 2026-12-07), each with `fast` preset settings overridden; "start" rows train one step at a learning rate of
1e-6, so they show where fine-tuning starts (as evaluated after the support set's BatchNorm statistics are refitted).
Usage: python benchmarks/finetune_recipes.py sweeps/results-glyphs [DATA_ROOT] [--shot 1] [--tasks 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.collective.network import ExpandableNet
from core.collective.runs import open_run
from core.individual.baselines import collective_finetune_method, nearest_centroid_method
from core.individual.config import IndividualConfig, individual_preset
from core.individual.methods import Method, run_methods, start_model
from core.individual.targets import TargetTask, fitting_query, make_targets, run_imageset
from core.individual.training import fit_and_test
from core.jobs.store import JobStore
from core.learngene.extraction import default_task
from core.seeding import generator
from core.stats import mean_ci95

START = {"lr": 1e-6, "epochs": 1}
RECIPES: dict[str, tuple[str, dict]] = {
    "features, 12 epochs (today)": ("features", {}),
    "features, start": ("features", START),
    "features, head scale 5": ("features", {"head_scale": 5}),
    "features, 24 epochs": ("features", {"epochs": 24}),
    "features, 48 epochs": ("features", {"epochs": 48}),
    "features, half the learning rate": ("features", {"lr": 0.0075}),
    "hidden, 12 epochs (before)": ("hidden", {}),
    "hidden, start": ("hidden", START),
    "hidden, start, BatchNorm kept": ("hidden", {**START, "inherited_bn": "keep"}),
    "hidden, 48 epochs": ("hidden", {"epochs": 48}),
    "hidden, no augmentation": ("hidden", {"augment": False}),
    "hidden, head scale 5": ("hidden", {"head_scale": 5}),
    "hidden, head scale 20": ("hidden", {"head_scale": 20}),
    "hidden, half the learning rate": ("hidden", {"lr": 0.0075}),
    "hidden, no weight decay": ("hidden", {"weight_decay": 0.0}),
    "hidden, BatchNorm kept, inherited lr x0.1": ("hidden", {"inherited_bn": "keep", "inherited_lr": 0.1}),
}


def hidden_head_method(base: ExpandableNet, way: int, config: IndividualConfig) -> Method:
    """The recipe before 2026-12-07: the whole collective model, its hidden fc layers kept, a new head on them."""

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        model = copy.deepcopy(base)
        model.replace_head(way, generator(target.seed, 41))
        model = start_model(model, target, config, "cpu", inherited_features=True)
        inherited = list(model.convs.values()) + list(model.fcs.values())[:-1]
        return fit_and_test(model, target, config, inherited=inherited, should_stop=should_stop)

    return Method("collective-finetune (hidden)", "all", 0, 0, run_task)


def main() -> None:
    """Every recipe on every run of the folder; per-run lines, then the paired summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("root", nargs="?", default=None)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--task-seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = sorted(p for p in JobStore.at(args.folder).runs.iterdir() if (p / "manifest.json").is_file())
    differences: dict[str, list[float]] = {name: [] for name in RECIPES}
    for folder in runs:
        run = open_run(folder)
        base = run.load_net(default_task(run))
        plain = individual_preset("fast", seed=args.task_seed)
        imageset = run_imageset(run, args.root)
        query = fitting_query(plain.query, imageset, args.shot)
        targets = make_targets(run, imageset, way=5, shot=args.shot, query=query, tasks=args.tasks, seed=args.task_seed)
        centroids = run_methods([nearest_centroid_method(base, plain)], targets)[0]["mean_accuracy"]
        print(f"run seed {run.config.seed}: nearest centroids {centroids:.3f}", flush=True)
        for name, (head, overrides) in RECIPES.items():
            config = individual_preset("fast", seed=args.task_seed, **overrides)
            make = collective_finetune_method if head == "features" else hidden_head_method
            method = make(base, 5, config)
            started = time.perf_counter()
            accuracy = run_methods([method], targets)[0]["mean_accuracy"]
            differences[name].append(accuracy - centroids)
            seconds = time.perf_counter() - started
            change = 100 * (accuracy - centroids)
            print(f"  {name:42s} {accuracy:.3f} ({change:+.1f} points, {seconds:.0f} s)", flush=True)
    print(f"\npaired difference to nearest centroids over {len(runs)} runs (points, 95% t-interval, runs at or above)")
    for name, values in differences.items():
        mean, half = mean_ci95(values)
        print(f"  {name:42s} {100 * mean:+.1f} ± {100 * half:.1f}  ({sum(v >= 0 for v in values)} of {len(values)})")


if __name__ == "__main__":
    main()
