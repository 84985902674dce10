"""The collective stage's settings, and its presets: `fast` (default, laptop), `smoke` (tests), `paper`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.collective.network import PAPER_SPEC_CIFAR, PAPER_WIDENING
from core.data.division import ClassDivision, division_for
from core.data.imageset import ImageSet
from core.data.tasks import SourceTask, source_stream
from core.errors import LearngeneError, Setting, check_all
from core.presets import choose_preset


@dataclass(frozen=True)
class CollectiveConfig:
    """Every setting of a collective run; together with the seed it fixes the run's numbers."""

    preset: str = "fast"
    dataset: str = "glyphs"
    image_size: int = 32
    seed: int = 0
    tasks: int = 12
    classes_per_task: int = 5
    images_per_class: int = 15
    heldout_per_class: int = 5
    novel_fraction: float = 0.2
    open_world_fraction: float = 0.16
    open_world_from: int | None = 6
    widths: tuple[int, ...] = (16, 16, 32, 32, 64, 64)
    pool_after: tuple[int, ...] = (2, 4, 6)
    hidden: tuple[int, ...] = (128,)
    num_outputs: int | None = None
    dropout: float = 0.2
    widening: tuple[tuple[int, str, int], ...] = (
        (1, "conv3", 16),
        (2, "conv4", 16),
        (3, "conv5", 32),
        (4, "conv6", 32),
    )
    widen_noise: float = 0.0
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    softmax_before_loss: bool = False
    head: str = "shared"
    ewc_lambda: float = 0.0
    tau: float = 3e-3
    augment: bool = True
    precise_bn: bool = False
    flip: bool = False
    extract_after_task: int | None = None
    expansion_tasks: int = 5

    def validate(self) -> CollectiveConfig:
        """Return self, or raise LearngeneError naming the first bad setting and its valid range."""
        checks = [
            (1 <= self.tasks <= 1000, Setting("tasks"), " must be between 1 and 1000"),
            (8 <= self.image_size <= 256, "image size must be between 8 and 256"),
            (1 <= self.epochs <= 10_000, Setting("epochs"), " must be between 1 and 10000"),
            (2 <= self.classes_per_task <= 1000, "classes per task must be between 2 and 1000"),
            (1 <= self.images_per_class <= 100_000, "images per class must be between 1 and 100000"),
            (0 <= self.heldout_per_class <= 100_000, "held-out images per class must be between 0 and 100000"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (0 < self.lr <= 1e6, "learning rate must be in (0, 1e6]"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight decay must be 0 or more"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.head in ("shared", "per_task"), "head must be 'shared' or 'per_task'"),
            (self.ewc_lambda >= 0, "EWC lambda must be 0 or more"),
            (1e-14 <= self.tau <= 10, Setting("tau"), " must be between 1e-14 and 10"),
            (
                2 <= len(self.widths) <= 64 and all(1 <= w <= 4096 for w in self.widths),
                "the network needs 2 to 64 conv layers of width 1 to 4096",
            ),
            (
                len(self.hidden) <= 8 and all(1 <= h <= 65536 for h in self.hidden),
                "hidden layers: at most 8, each of width 1 to 65536",
            ),
            (self.widen_noise >= 0, "widening noise must be 0 or more"),
            (all(1 <= p <= len(self.widths) for p in self.pool_after), "pools must follow existing conv layers"),
            (self.image_size // 2 ** len(self.pool_after) >= 1, "too many pools for the image size"),
            (self.seed >= 0, Setting("seed"), " must be 0 or more"),
            (
                self.extract_after_task is None or 0 <= self.extract_after_task < self.tasks,
                Setting("extract_after", str(self.extract_after_task)),
                f" is not a task of the run: choose 0..{self.tasks - 1}",
            ),
            (
                self.num_outputs is None or self.num_outputs >= self.classes_per_task,
                "the head needs at least one output per class of a task",
            ),
        ]
        check_all(checks)
        names = {f"conv{i}" for i in range(1, len(self.widths) + 1)}
        for task, layer, extra in self.widening:
            if layer not in names or not 1 <= extra <= 4096 or task < 1:
                raise LearngeneError(
                    f"widening step ({task}, {layer}, {extra}) names no conv layer or adds no channels"
                )
        return self

    def as_dict(self) -> dict:
        """JSON-ready form (tuples become lists)."""
        return dataclasses.asdict(self)

    def division(self, class_names: Sequence[str]) -> ClassDivision:
        """The run's class division over a dataset with these classes."""
        return division_for(
            self.dataset,
            class_names,
            seed=self.seed,
            novel_fraction=self.novel_fraction,
            open_world_fraction=self.open_world_fraction,
        )

    def stream(self, imageset: ImageSet) -> tuple[ClassDivision, list[SourceTask]]:
        """The run's class division and source task stream over its image set (the same on every call)."""
        division = self.division(imageset.class_names)
        return division, source_stream(
            imageset,
            division,
            tasks=self.tasks,
            classes_per_task=self.classes_per_task,
            images_per_class=self.images_per_class,
            heldout_per_class=self.heldout_per_class,
            seed=self.seed,
            open_world_from=self.open_world_from,
        )

    @classmethod
    def from_dict(cls, data: dict) -> CollectiveConfig:
        """Rebuild from `as_dict()` output, rejecting unknown keys."""
        if not isinstance(data, dict):
            raise LearngeneError("a collective config must be a JSON object of settings: see a run's config.json")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LearngeneError(f"unknown collective settings {unknown}: remove them from the config")
        values = dict(data)
        for name in ("widths", "pool_after", "hidden"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        if isinstance(values.get("widening"), list):
            values["widening"] = tuple(tuple(step) if isinstance(step, list) else step for step in values["widening"])
        defaults = cls()
        for name, value in values.items():
            if not _same_kind(value, getattr(defaults, name), name):
                raise LearngeneError(f"setting {name}={value!r} has the wrong type: compare with a run's config.json")
        return cls(**values)


def _same_kind(value: object, default: object, name: str) -> bool:
    """Whether a JSON value fits a setting whose default is `default`."""
    if name in ("open_world_from", "num_outputs", "extract_after_task"):
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    if name == "widening":
        return isinstance(value, tuple) and all(
            isinstance(step, tuple)
            and len(step) == 3
            and isinstance(step[0], int)
            and isinstance(step[1], str)
            and isinstance(step[2], int)
            for step in value
        )
    return isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


# A per-task head, a moderate step (momentum 0.5) and precise BatchNorm statistics keep the network able to learn
# over long streams; docs/results.md ("Plasticity") has the measurements behind them.
_HEALTHY = dict(head="per_task", momentum=0.5, lr=0.01, precise_bn=True)

PRESETS: dict[str, CollectiveConfig] = {
    "fast": CollectiveConfig(tasks=40, **_HEALTHY),
    "smoke": CollectiveConfig(
        preset="smoke",
        tasks=34,
        images_per_class=8,
        heldout_per_class=4,
        open_world_from=2,
        widths=(8, 8, 16, 16),
        pool_after=(1, 2, 4),
        hidden=(32,),
        widening=((1, "conv2", 4), (2, "conv3", 8)),
        epochs=15,
        batch_size=16,
        expansion_tasks=3,
        **dict(_HEALTHY, lr=0.05),
    ),
    "paper": CollectiveConfig(
        preset="paper",
        dataset="cifar100",
        tasks=50,
        images_per_class=500,
        heldout_per_class=100,
        open_world_from=21,
        widths=PAPER_SPEC_CIFAR.widths,
        pool_after=PAPER_SPEC_CIFAR.pool_after,
        hidden=PAPER_SPEC_CIFAR.hidden,
        num_outputs=PAPER_SPEC_CIFAR.num_outputs,
        dropout=PAPER_SPEC_CIFAR.dropout,
        widening=PAPER_WIDENING,
        epochs=100,
        batch_size=64,
        lr=0.001,
        softmax_before_loss=True,
        tau=5e-10,
        flip=True,
        extract_after_task=20,
        expansion_tasks=21,
    ),
}


def preset(name: str, **overrides: object) -> CollectiveConfig:
    """A preset with some settings overridden (None values are ignored), validated."""
    return choose_preset(PRESETS, name, "collective", overrides)
