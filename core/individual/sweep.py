"""Accuracy over model size: every inheritance strategy at width multipliers from 1/8 to 1 of the collective model.

At multiplier m, weight selection is the collective's architecture at m of its widths; the learngene and
front-inheritance models keep their inherited block and scale every new layer (front, back, head) by m. The
collective model fine-tuned is the reference point of the largest size. Each point is a results row (params, mean
accuracy, 95% CI, per-task accuracies) on the same target tasks, paired with its twin: scratch of exactly its own
architecture (core.individual.twins), trained once per architecture.
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
from core.individual.methods import Method, individual_method, run_methods, selection_method
from core.individual.model import fitted_spec, scaled
from core.individual.targets import Targets
from core.individual.twins import pair_with_twin, twin_name
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import Selection, block_label, front_block

MULTIPLIERS = (0.125, 0.25, 0.5, 1.0)
COLLECTIVE = "collective"
FINETUNE = "collective-finetune"


@dataclass(frozen=True)
class Size:
    """One model size: a width multiplier of the collective model's layers."""

    multiplier: float

    @property
    def label(self) -> str:
        """ "x1/8", "x1"."""
        return f"x{Fraction(self.multiplier).limit_denominator(64)}"


@dataclass(frozen=True)
class Entry:
    """One row of the sweep, planned without building its model: a strategy's point or its twin.

    `architecture` names the network ("individual", block, m), ("collective", m) or ("conv stack", 1.0) (the
    collective's conv layers under a head on their features); `same` is the table row it equals (same model, same
    training) or "".
    """

    name: str
    architecture: tuple
    same: str = ""
    twin: bool = False


def default_sizes() -> list[Size]:
    """Width multipliers 1/8, 1/4, 1/2 and 1: parameter counts that span well over 20x."""
    return [Size(m) for m in MULTIPLIERS]


def _front_layers(run: Run, learngene: Learngene) -> tuple[str, ...]:
    """The layers before the learngene block (none when the learngene starts at the input layer)."""
    return front_block(run.spec(learngene.task).layer_names(), learngene.layers)


def _with_twin(strategy: str, architecture: tuple, same: str, twin_same: str = "") -> list[Entry]:
    """A strategy's entry and its twin's, of one architecture."""
    return [Entry(strategy, architecture, same), Entry(twin_name(strategy), architecture, twin_same, twin=True)]


def _entries(run: Run, learngene: Learngene, config: IndividualConfig, size: Size | None) -> list[Entry]:
    """The rows at one size (None: the collective's reference point), each strategy followed by its twin."""
    if size is None:
        return _with_twin(FINETUNE, ("conv stack", 1.0), FINETUNE)
    m = size.multiplier
    full = m == 1.0  # the table's learngene, scratch and front rows are these models at full width
    entries = _with_twin(
        "learngene", ("individual", learngene.layers, m), "learngene" if full else "", "scratch" if full else ""
    )
    block = _front_layers(run, learngene)
    if block:
        front = f"front {block_label(block)}" if full else ""
        entries += _with_twin("front inheritance", ("individual", block, m), front)
    selected = f"weight selection x{m:g}" if m == config.selection_multiplier else ""
    return entries + _with_twin("weight selection", ("collective", m), selected)


def _schedule(
    run: Run, learngene: Learngene, config: IndividualConfig, sizes: Iterable[Size], known: Iterable[str]
) -> list[tuple[Size | None, list[Entry], list[Entry]]]:
    """(size, its rows, the rows to train there) per size, then the collective's: a row equal to a `known` table
    row is reused, and a twin whose architecture an earlier twin has is trained once."""
    known, trained = set(known), set()
    plan = []
    for size in [*sizes, None]:
        entries = _entries(run, learngene, config, size)
        todo = []
        for entry in entries:
            if entry.twin and entry.architecture in trained:
                continue
            if entry.twin:
                trained.add(entry.architecture)
            if entry.same not in known:
                todo.append(entry)
        plan.append((size, entries, todo))
    return plan


class _Builder:
    """Makes the method of an entry: the collective, its front block and the sized configs, loaded once."""

    def __init__(self, run: Run, learngene: Learngene, config: IndividualConfig, way: int, device: str) -> None:
        self.config, self.way, self.device = config, way, device
        self.base = run.load_net(learngene.task)
        block = _front_layers(run, learngene)
        self.genes = {learngene.layers: learngene}
        if block:
            self.genes[block] = extract(run, Selection(block, "front", len(block)), learngene.task)

    def sized(self, m: float) -> IndividualConfig:
        """The config whose every new layer is m as wide."""
        return dataclasses.replace(
            self.config,
            width_multiplier=self.config.width_multiplier * m,
            head_hidden=tuple(scaled(h, m) for h in self.config.head_hidden),
        )

    def method(self, entry: Entry) -> Method:
        """The entry's method: inherited for a strategy, the same architecture from random weights for a twin."""
        kind, *rest = entry.architecture
        if kind == "conv stack":
            return collective_finetune_method(self.base, self.way, self.config, self.device, inherit=not entry.twin)
        if kind == "collective":
            m = rest[0]
            return selection_method(
                entry.name, self.base, m, self.way, self.config, inherit=not entry.twin, device=self.device
            )
        layers, m = rest
        gene, sized = self.genes[layers], self.sized(m)
        spec = fitted_spec(gene, self.way, sized)
        return individual_method(entry.name, spec, sized, None if entry.twin else gene, self.device)


def sweep_methods(
    run: Run, learngene: Learngene, config: IndividualConfig, way: int, size: Size, device: str = "cpu"
) -> list[tuple[Method, str]]:
    """The strategies at one size, each followed by its twin, with the name of the table row each equals (same
    model, same training), so that a sweep beside `--baselines` reuses that row instead of training again."""
    builder = _Builder(run, learngene, config, way, device)
    return [(builder.method(e), e.same) for e in _entries(run, learngene, config, size)]


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
    """Points of every strategy at every size, then the collective fine-tuned, each strategy's point followed by its
    twin and paired with it.

    `known` are rows already computed on the same targets and config (the table beside the sweep): a point whose
    model and training equal one of them, and the collective's reference point, reuse it.
    """
    known = {row["method"]: row for row in known}
    sizes = default_sizes() if sizes is None else list(sizes)
    builder = _Builder(run, learngene, config, targets.way, device)
    twins: dict[tuple, dict] = {}
    points = []
    for size, entries, todo in _schedule(run, learngene, config, sizes, known):
        label, multiplier = (COLLECTIVE, 1.0) if size is None else (size.label, size.multiplier)
        methods = [builder.method(e) for e in todo]
        trained = iter(run_methods(methods, targets, size=label, listeners=listeners, should_stop=should_stop))
        rows = {}
        for entry in entries:
            if entry in todo:
                row = next(trained)
            else:
                row = known[entry.same] if entry.same in known else twins[entry.architecture]
                row = {k: v for k, v in row.items() if k != "vs_scratch"}
            rows[entry] = dict(row, method=entry.name, size=label, multiplier=multiplier)
            if entry.twin:
                twins.setdefault(entry.architecture, rows[entry])
        for point, twin in zip(entries[::2], entries[1::2]):
            pair_with_twin(rows[point], rows[twin])
        points += rows.values()
    return points


def sweep_trainings(
    run: Run, learngene: Learngene, config: IndividualConfig, sizes: Iterable[Size], known: Iterable[str]
) -> int:
    """How many trainings per target task a sweep runs beside the table rows named `known`."""
    return sum(len(todo) for _, _, todo in _schedule(run, learngene, config, sizes, known))
