"""Methods that solve a target task, run on the same target tasks with the same per-task seeds.

`individual_method` is the paper's individual model (an inherited block behind a new front) or, without a learngene,
the same architecture from scratch. `run_methods` trains each method on every target task and makes its table row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from core.collective.ewc import EWC
from core.events import Listener, MethodFinished, TargetTaskFinished, check_stop, emit
from core.individual.config import IndividualConfig
from core.individual.model import IndividualSpec, build_individual
from core.individual.targets import Targets, TargetTask
from core.individual.training import batches, fit_and_test, layout
from core.learngene.gene import Learngene
from core.learngene.selection import block_label
from core.stats import mean_ci95

ROW_FIELDS = (
    "method",
    "layers",
    "params",
    "inherited_params",
    "mean_accuracy",
    "ci95",
    "tasks",
    "way",
    "shot",
    "seconds",
    "task_accuracies",
)


@dataclass(frozen=True, eq=False)
class Method:
    """A way to solve a target task: name, which layers it inherits, its size, and a per-task runner."""

    name: str
    layers: str
    params: int
    inherited_params: int
    run_task: Callable[[TargetTask, Callable[[], bool] | None], float]


def individual_method(
    name: str,
    spec: IndividualSpec,
    config: IndividualConfig,
    learngene: Learngene | None,
    device: str = "cpu",
) -> Method:
    """An individual model: inherited block (learngene given) or the same architecture from random init (None)."""
    probe = build_individual(spec, 0, learngene)

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        model = build_individual(spec, target.seed, learngene)
        if learngene is not None and config.freeze:
            model.freeze_block()
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        ewc = None
        if learngene is not None and config.ewc_lambda > 0 and not config.freeze:
            ewc = EWC(config.ewc_lambda, exclude=lambda n: not n.startswith("block."))
            support_batches = [
                (layout(target.support[i], config), target.support_labels[i])
                for i in batches(torch.arange(len(target.support_labels)), config.batch_size)
            ]
            ewc.consolidate(model, support_batches)
        return fit_and_test(model, target, config, ewc, should_stop)

    inherited = probe.inherited_parameters() if learngene is not None else 0
    return Method(name, block_label(spec.block_layers), probe.num_parameters(), inherited, run_task)


def run_methods(
    methods: Iterable[Method],
    targets: Targets,
    *,
    size: str = "",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Run every method on every target task; emit TargetTaskFinished per task and MethodFinished per method."""
    listeners = tuple(listeners)
    rows = []
    for method in methods:
        started = time.perf_counter()
        accuracies = []
        for target in targets.tasks:
            check_stop(should_stop)
            acc = method.run_task(target, should_stop)
            accuracies.append(acc)
            emit(
                listeners,
                TargetTaskFinished(method.name, target.task.task_id, len(targets.tasks), acc, method.params, size),
            )
        mean, half = mean_ci95(accuracies)
        row = {
            "method": method.name,
            "layers": method.layers,
            "params": method.params,
            "inherited_params": method.inherited_params,
            "mean_accuracy": mean,
            "ci95": None if math.isnan(half) else half,
            "tasks": len(accuracies),
            "way": targets.way,
            "shot": targets.shot,
            "seconds": round(time.perf_counter() - started, 3),
            "task_accuracies": accuracies,
        }
        if size:
            row["size"] = size
        rows.append(row)
        emit(listeners, MethodFinished(dict(row)))
    return rows
