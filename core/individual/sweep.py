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
from core.learngene.selection import Selection, block_label, front_block

MULTIPLIERS = (0.125, 0.25, 0.5, 1.0)
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
) -> list[tuple[Method, str]]:
    """The strategies at one size, named by strategy, each with the name of the table row it equals (same model,
    same training), so that a sweep beside `--baselines` reuses that row instead of training again."""
    m = size.multiplier
    sized = dataclasses.replace(
        config,
        width_multiplier=config.width_multiplier * m,
        head_hidden=tuple(scaled(h, m) for h in config.head_hidden),
    )
    base = run.load_net(learngene.task)
    block = _front_layers(run, learngene)
    front = extract(run, Selection(block, "front", len(block)), learngene.task) if block else None
    builders = {
        "learngene": lambda: individual_method(
            "learngene", fitted_spec(learngene, way, sized), sized, learngene, device
        ),
        "front inheritance": lambda: individual_method(
            "front inheritance", fitted_spec(front, way, sized), sized, front, device
        ),
        "weight selection": lambda: selection_method("weight selection", base, m, way, config, device=device),
        "scratch": lambda: selection_method("scratch", base, m, way, config, inherit=False, device=device),
    }
    return [(builders[name](), same) for name, same in _sweep_names(run, learngene, config, size)]


def _front_layers(run: Run, learngene: Learngene) -> tuple[str, ...]:
    """The layers before the learngene block (none when the learngene starts at the input layer)."""
    return front_block(run.spec(learngene.task).layer_names(), learngene.layers)


def _sweep_names(run: Run, learngene: Learngene, config: IndividualConfig, size: Size) -> list[tuple[str, str]]:
    """(strategy, the name of the equal table row or "") at one size, without building models."""
    m, same = size.multiplier, size.multiplier == 1.0
    names = [("learngene", "learngene" if same else "")]
    block = _front_layers(run, learngene)
    if block:
        names.append(("front inheritance", f"front {block_label(block)}" if same else ""))
    names.append(("weight selection", f"weight selection x{m:g}" if m == config.selection_multiplier else ""))
    names.append(("scratch", ""))
    return names


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
    """Points of every strategy at every size, then the collective fine-tuned.

    `known` are rows already computed on the same targets and config (the table beside the sweep): a point whose
    model and training equal one of them, and the collective's reference point, reuse it.
    """
    known = {row["method"]: row for row in known}
    points = []
    for size in default_sizes() if sizes is None else sizes:
        pairs = sweep_methods(run, learngene, config, targets.way, size, device)
        todo = [method for method, same in pairs if same not in known]
        trained = iter(run_methods(todo, targets, size=size.label, listeners=listeners, should_stop=should_stop))
        rows = []
        for method, same in pairs:
            row = dict(known[same], method=method.name, size=size.label) if same in known else next(trained)
            rows.append(dict(row, multiplier=size.multiplier))
        add_paired(rows, next(r for r in rows if r["method"] == "scratch"))
        points += rows
    reference = known.get("collective-finetune")
    if reference is None:
        base = run.load_net(learngene.task)
        method = collective_finetune_method(base, targets.way, config, device)
        reference = run_methods([method], targets, size=COLLECTIVE, listeners=listeners, should_stop=should_stop)[0]
    points.append(dict(reference, size=COLLECTIVE, multiplier=1.0))
    return points


def sweep_trainings(
    run: Run, learngene: Learngene, config: IndividualConfig, sizes: Iterable[Size], known: Iterable[str]
) -> int:
    """How many trainings per target task a sweep runs beside the table rows named `known`."""
    known = set(known)
    count = 0 if "collective-finetune" in known else 1
    for size in sizes:
        count += sum(1 for _, same in _sweep_names(run, learngene, config, size) if same not in known)
    return count
