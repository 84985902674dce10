"""How individual models are built and trained on a target task: the config and its presets (`fast`, `paper`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.errors import Setting, check_all
from core.individual.head import HEAD_INITS, HEADS
from core.presets import choose_preset

OPTIMIZERS = ("sgd", "adam")
CENTROID_FEATURES = ("features", "embed")
CENTROID_METRICS = ("cosine", "euclidean")
INHERITED_BN = ("adapt", "keep")


@dataclass(frozen=True)
class IndividualConfig:
    """How individual models are built and trained on a target task; defaults are tuned for a fast CPU re-run.

    The default head is a cosine classifier (Baseline++) read straight off the features, no hidden layer, started as
    the support set's prototypes where every layer before it is inherited: fine-tuning then starts from nearest
    centroids on the inherited features instead of below them (measured in docs/results.md). The collective's
    architecture from random weights keeps a linear head, which suits it better (see `head.chosen_head`).
    """

    preset: str = "fast"
    epochs: int = 12
    lr: float = 0.015
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 25
    optimizer: str = "sgd"
    reset_optimizer: bool = False
    query: int = 10
    freeze: bool = False
    inherited_lr: float = 1.0
    ewc_lambda: float = 0.0
    width_multiplier: float = 1.0
    selection_multiplier: float = 0.5
    front_depth: int | None = None
    front_widths: tuple[int, ...] | None = None
    front_pools: tuple[int, ...] | None = None
    head_hidden: tuple[int, ...] = ()
    augment: bool = True
    recalibrate_bn: bool = True
    head_init: str = "auto"
    head: str = "auto"
    head_scale: float = 10.0
    inherited_bn: str = "adapt"
    channels_last: bool = True
    stack: int = 10
    centroid_features: str = "features"
    centroid_metric: str = "cosine"
    seed: int = 0

    def validate(self) -> IndividualConfig:
        """Return self, or raise LearngeneError naming the first bad setting and its valid range."""
        checks = [
            (1 <= self.epochs <= 10_000, Setting("target_epochs"), " must be between 1 and 10000"),
            (0 < self.lr <= 10, "learning rate must be in (0, 10]"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight decay must be 0 or more"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.query >= 1, Setting("query"), " must be at least 1"),
            (self.ewc_lambda >= 0, "EWC lambda must be 0 or more"),
            (0 < self.inherited_lr <= 10, "the inherited layers' learning-rate factor must be in (0, 10]"),
            (0 < self.selection_multiplier <= 1, "the weight-selection width multiplier must be in (0, 1]"),
            (1 <= self.stack <= 1000, "target tasks trained side by side must be between 1 and 1000"),
            (self.head_init in HEAD_INITS, f"head init must be one of {', '.join(HEAD_INITS)}"),
            (self.head in HEADS, f"head must be one of {', '.join(HEADS)}"),
            (0 < self.head_scale <= 1000, "the cosine head's scale must be in (0, 1000]"),
            (self.inherited_bn in INHERITED_BN, f"inherited BatchNorm must be one of {', '.join(INHERITED_BN)}"),
            (0 < self.width_multiplier <= 64, "the front width multiplier must be in (0, 64]"),
            (
                self.front_depth is None or 1 <= self.front_depth <= 64,
                Setting("front_depth"),
                " must be between 1 and 64",
            ),
            (
                len(self.head_hidden) <= 8 and all(1 <= h <= 16_384 for h in self.head_hidden),
                "head widths must be 1 to 16384, at most 8 of them",
            ),
            (
                self.front_widths is None or all(1 <= w <= 16_384 for w in self.front_widths),
                "front widths must be 1 to 16384",
            ),
            (
                self.centroid_features in CENTROID_FEATURES,
                f"centroid features must be one of {', '.join(CENTROID_FEATURES)}",
            ),
            (self.centroid_metric in CENTROID_METRICS, f"centroid metric must be one of {', '.join(CENTROID_METRICS)}"),
            (self.seed >= 0, Setting("seed"), " must be 0 or more"),
        ]
        check_all(checks)
        return self

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)


INDIVIDUAL_PRESETS: dict[str, IndividualConfig] = {
    "fast": IndividualConfig(),
    "paper": IndividualConfig(
        preset="paper",
        epochs=30,
        lr=0.005,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=32,
        query=100,
        front_widths=(64, 128, 256, 512),
        front_pools=(1, 2, 3),
        head_hidden=(1024, 1024),
        head="linear",
        head_init="random",
        augment=True,
        channels_last=True,
    ),
}


def individual_preset(name: str, **overrides: object) -> IndividualConfig:
    """A preset with some settings overridden (None values are ignored), validated."""
    return choose_preset(INDIVIDUAL_PRESETS, name, "individual", overrides)
