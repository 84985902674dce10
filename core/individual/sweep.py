"""Accuracy over model size: every inheritance strategy at width multipliers from 1/8 to 1 of the collective model.

At multiplier m, weight selection and scratch are the collective's architecture at m of its widths (the one inherited,
the other random); the learngene and front-inheritance models keep their inherited block and scale every new layer
(front, back, head) by m. The collective model fine-tuned is the reference point of the largest size. Each point is a
results row (params, mean accuracy, 95% CI, per-task accuracies) on the same target tasks, with its paired difference
to scratch of the same multiplier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from core.collective.runs import Run
from core.events import Listener
from core.individual.baselines import collective_finetune_method
from core.individual.config import IndividualConfig
from core.individual.methods import Method, add_paired, individual_method, run_methods, selection_method
from core.individual.model import fitted_spec, scaled
from core.individual.targets import Targets
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import Selection, conv_layers

MULTIPLIERS = (0.125, 0.25, 0.5, 1.0)
STRATEGIES = ("learngene", "front inheritance", "weight selection", "scratch")
COLLECTIVE = "collective"


@dataclass(frozen=True)
class Size:
    """One model size: a width multiplier of the collective model's layers."""

    multiplier: float

    @property
    def label(self) -> str:
        """ "x1/8", "x1"."""
        return f"x{Fraction(self.multiplier).limit_denominator(64)}"


def default_sizes() -> list[Size]:
    """Width multipliers 1/8, 1/4, 1/2 and 1: parameter counts that span well over 20x."""
    return [Size(m) for m in MULTIPLIERS]


def sweep_methods(
    run: Run, learngene: Learngene, config: IndividualConfig, way: int, size: Size, device: str = "cpu"
) -> list[Method]:
    """The strategies at one size, named by strategy (the size goes into the rows' `size` field)."""
    m = size.multiplier
    sized = dataclasses.replace(
        config,
        width_multiplier=config.width_multiplier * m,
        head_hidden=tuple(scaled(h, m) for h in config.head_hidden),
    )
    base = run.load_net(learngene.task)
    methods = []
    if not learngene.starts_at_input:
        methods.append(individual_method("learngene", fitted_spec(learngene, way, sized), sized, learngene, device))
    front_layers = conv_layers(run.spec(learngene.task).layer_names())[: len(learngene.layers)]
    front = extract(run, Selection(front_layers, "front", len(front_layers)), learngene.task)
    methods.append(individual_method("front inheritance", fitted_spec(front, way, sized), sized, front, device))
    methods.append(selection_method("weight selection", base, m, way, config, device=device))
    methods.append(selection_method("scratch", base, m, way, config, inherit=False, device=device))
    return methods


def sweep(
    run: Run,
    learngene: Learngene,
    config: IndividualConfig,
    targets: Targets,
    *,
    sizes: Iterable[Size] | None = None,
    known: Iterable[dict] = (),
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Points of every strategy at every size, then the collective fine-tuned (reused from `known` rows if there)."""
    points = []
    for size in default_sizes() if sizes is None else sizes:
        methods = sweep_methods(run, learngene, config, targets.way, size, device)
        rows = run_methods(methods, targets, size=size.label, listeners=listeners, should_stop=should_stop)
        for row in rows:
            row["multiplier"] = size.multiplier
        add_paired(rows, next(r for r in rows if r["method"] == "scratch"))
        points += rows
    reference = next((dict(r) for r in known if r["method"] == "collective-finetune"), None)
    if reference is None:
        base = run.load_net(learngene.task)
        method = collective_finetune_method(base, targets.way, config, device)
        reference = run_methods([method], targets, size=COLLECTIVE, listeners=listeners, should_stop=should_stop)[0]
    points.append(dict(reference, size=COLLECTIVE, multiplier=1.0))
    return points


def sweep_trainings(learngene: Learngene, sizes: Iterable[Size], collective_known: bool) -> int:
    """How many trainings per target task a sweep runs."""
    per_size = len(STRATEGIES) - (1 if learngene.starts_at_input else 0)
    return per_size * len(list(sizes)) + (0 if collective_known else 1)
