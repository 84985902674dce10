"""Accuracy over model size: learngene and scratch individual models at several sizes, with the collective as reference.

Sizes vary the front's width multiplier, its depth, and how many layers are inherited (the block keeps its deepest
layer and grows or shrinks towards the input). Each point is (params, mean accuracy, 95% CI) on the same target tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.collective.runs import Run
from core.errors import LearngeneError
from core.events import Listener
from core.individual.baselines import collective_finetune_method
from core.individual.config import IndividualConfig
from core.individual.methods import individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.targets import Targets
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import Selection, candidates, conv_index


@dataclass(frozen=True)
class Size:
    """One model size: a label, front settings, and the number of inherited layers (None: the learngene's)."""

    label: str
    width_multiplier: float = 1.0
    front_depth: int | None = None
    inherited_layers: int | None = None

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def default_sizes(learngene: Learngene, config: IndividualConfig) -> list[Size]:
    """Narrower and wider fronts, a deeper front, and one inherited layer fewer and more (where the network allows)."""
    sizes = [Size("front x0.5", 0.5), Size("default"), Size("front x2", 2.0)]
    if config.front_widths is None:
        depth = len(fitted_spec(learngene, 2, config).front_widths)
        sizes.append(Size(f"front depth {depth + 1}", front_depth=depth + 1))
    k = len(learngene.layers)
    if k > 1:
        sizes.append(Size(f"{k - 1} inherited", inherited_layers=k - 1))
    if conv_index(learngene.layers[0]) > 2:
        sizes.append(Size(f"{k + 1} inherited", inherited_layers=k + 1))
    return sizes


def _block(run: Run, learngene: Learngene, count: int) -> tuple[str, ...]:
    """`count` contiguous layers ending at the learngene's deepest layer."""
    names = candidates(run.spec(learngene.task).layer_names())
    end = names.index(learngene.layers[-1])
    if not 1 <= count <= end + 1:
        raise LearngeneError(f"cannot inherit {count} layers ending at {learngene.layers[-1]}: choose 1..{end + 1}")
    return names[end + 1 - count : end + 1]


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
    """Points (method, size, params, mean_accuracy, ci95, ...) of learngene and scratch per size, then the collective.

    `known` are rows that `evaluate` already produced on the same targets and config: their learngene and scratch
    rows stand for the "default" size and their collective-finetune row for the reference, instead of training again.
    """
    known = {row["method"]: row for row in known}
    points = []
    for size in default_sizes(learngene, config) if sizes is None else sizes:
        gene = learngene
        if size.inherited_layers is not None and size.inherited_layers != len(learngene.layers):
            block = _block(run, learngene, size.inherited_layers)
            gene = extract(run, Selection(block, "size sweep", len(block)), learngene.task)
        sized = dataclasses.replace(
            config, width_multiplier=size.width_multiplier, front_depth=size.front_depth or config.front_depth
        )
        spec = fitted_spec(gene, targets.way, sized)
        if size == Size("default") and {"learngene", "scratch"} <= known.keys():
            rows = [dict(known[m], size=size.label) for m in ("learngene", "scratch")]
        else:
            methods = [
                individual_method("learngene", spec, sized, gene, device),
                individual_method("scratch", spec, sized, None, device),
            ]
            rows = run_methods(methods, targets, size=size.label, listeners=listeners, should_stop=should_stop)
        points += [dict(row, front_widths=list(spec.front_widths)) for row in rows]
    reference = known.get("collective-finetune")
    if reference is None:
        base = run.load_net(learngene.task)
        reference = run_methods(
            [collective_finetune_method(base, targets.way, config, device)],
            targets,
            size="collective",
            listeners=listeners,
            should_stop=should_stop,
        )[0]
    points.append(dict(reference, size="collective", front_widths=[]))
    return points
