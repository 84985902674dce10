"""The collective model's expandable VGG-style network (spec section 3): conv-BN-ReLU blocks, max-pools, an MLP head."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import skip_init

from core.errors import LearngeneError, check_all


@dataclass(frozen=True)
class NetSpec:
    """The shape of an expandable network; it changes only through widening."""

    in_channels: int
    image_size: int
    widths: tuple[int, ...]
    pool_after: tuple[int, ...]
    hidden: tuple[int, ...]
    num_outputs: int
    dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("widths", "pool_after", "hidden"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        n = len(self.widths)
        checks = [
            (self.in_channels >= 1, f"in_channels is {self.in_channels}: use 1 (grayscale) or 3 (RGB)"),
            (self.image_size >= 1, f"image_size is {self.image_size}: use a positive side length such as 32"),
            (
                n >= 1 and min(self.widths) >= 1,
                f"conv widths {list(self.widths)} are invalid: give at least one width, each >= 1",
            ),
            (
                list(self.pool_after) == sorted(set(self.pool_after)) and all(1 <= p <= n for p in self.pool_after),
                f"pool_after {list(self.pool_after)} is invalid: give increasing 1-based conv indices from 1 to {n}",
            ),
            (all(h >= 1 for h in self.hidden), f"hidden widths {list(self.hidden)} are invalid: each must be >= 1"),
            (self.num_outputs >= 1, f"num_outputs is {self.num_outputs}: the head needs at least one output"),
            (0 <= self.dropout < 1, f"dropout is {self.dropout}: choose a value in [0, 1)"),
            (
                self.image_size // 2 ** len(self.pool_after) >= 1,
                f"{len(self.pool_after)} pools shrink a {self.image_size}-pixel image to nothing: use fewer pools or "
                "larger images",
            ),
        ]
        check_all(checks)

    def feature_size(self) -> int:
        """Spatial side of the conv stack's output, after all pools."""
        return self.image_size // 2 ** len(self.pool_after)

    def layer_names(self) -> tuple[str, ...]:
        """Names of the weight layers in network order: conv1..convN, then fc1..fc{K+1}."""
        convs = tuple(f"conv{i}" for i in range(1, len(self.widths) + 1))
        return convs + tuple(f"fc{i}" for i in range(1, len(self.hidden) + 2))

    def weight_sizes(self) -> dict[str, int]:
        """Entries of each weight layer's weight tensor (conv: out x in x 3 x 3, linear: out x in), in network order."""
        channels = (self.in_channels,) + self.widths
        sizes = {f"conv{i}": channels[i - 1] * channels[i] * 9 for i in range(1, len(self.widths) + 1)}
        linear = (self.widths[-1] * self.feature_size() ** 2,) + self.hidden + (self.num_outputs,)
        sizes.update({f"fc{i}": linear[i - 1] * linear[i] for i in range(1, len(linear))})
        return sizes

    def to_dict(self) -> dict:
        """JSON-ready form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> NetSpec:
        """Rebuild from `to_dict()` output; unknown or missing keys are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        required = fields - {"dropout"}
        unknown, missing = sorted(set(data) - fields), sorted(required - set(data))
        if unknown or missing:
            raise LearngeneError(
                f"network spec has unknown keys {unknown} and lacks {missing}: recreate it with NetSpec.to_dict()"
            )
        return cls(**data)


PAPER_SPEC_CIFAR = NetSpec(
    in_channels=3,
    image_size=32,
    widths=(64, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256, 256),
    pool_after=(2, 4, 7, 10, 13),
    hidden=(1024, 1024),
    num_outputs=64,
    dropout=0.5,
)

PAPER_WIDENING: tuple[tuple[int, str, int], ...] = (
    (1, "conv3", 64),
    (2, "conv4", 64),
    (3, "conv5", 64),
    (4, "conv5", 64),
    (5, "conv6", 64),
    (6, "conv6", 64),
    (7, "conv7", 64),
    (8, "conv7", 64),
    (9, "conv8", 128),
    (10, "conv8", 128),
    (11, "conv9", 128),
    (12, "conv9", 128),
    (13, "conv10", 128),
    (14, "conv10", 128),
    (15, "conv11", 128),
    (16, "conv11", 128),
    (17, "conv12", 128),
    (18, "conv12", 128),
    (19, "conv13", 128),
    (20, "conv13", 128),
)


def _default_init(module: nn.Conv2d | nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's default init (weight and bias uniform in +-1/sqrt(fan_in)), drawn from `generator`."""
    bound = 1.0 / math.sqrt(module.weight[0].numel())
    with torch.no_grad():
        module.weight.uniform_(-bound, bound, generator=generator)
        module.bias.uniform_(-bound, bound, generator=generator)


def default_linear(in_features: int, out_features: int, generator: torch.Generator | None) -> nn.Linear:
    """nn.Linear with PyTorch's default init drawn from `generator`."""
    layer = skip_init(nn.Linear, in_features, out_features)
    _default_init(layer, generator)
    return layer


class ConvBlock(nn.Module):
    """conv3x3 (padding 1) -> BatchNorm2d -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.conv = skip_init(nn.Conv2d, in_channels, out_channels, 3, padding=1)
        _default_init(self.conv, generator)
        self.bn = skip_init(nn.BatchNorm2d, out_channels)
        self.bn.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ExpandableNet(nn.Module):
    """VGG-style CNN whose conv layers can be widened in place (see core.widening); returns logits."""

    def __init__(self, spec: NetSpec, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.spec = spec
        channels = (spec.in_channels,) + spec.widths
        self.convs = nn.ModuleDict(
            {
                f"conv{i}": ConvBlock(channels[i - 1], channels[i], generator=generator)
                for i in range(1, len(spec.widths) + 1)
            }
        )
        sizes = (spec.widths[-1] * spec.feature_size() ** 2,) + spec.hidden + (spec.num_outputs,)
        self.fcs = nn.ModuleDict(
            {f"fc{i}": default_linear(sizes[i - 1], sizes[i], generator) for i in range(1, len(sizes))}
        )
        self.dropout = nn.Dropout(spec.dropout)

    def features(self, x: Tensor, record: dict[str, Tensor] | None = None) -> Tensor:
        """Flattened output of the conv stack (after the last pool): what fc1 reads.

        With `record`, each conv block's output (after its ReLU, before pooling) is stored under the layer's name.
        """
        for i, (name, block) in enumerate(self.convs.items(), start=1):
            x = block(x)
            if record is not None:
                record[name] = x
            if i in self.spec.pool_after:
                x = F.max_pool2d(x, 2)
        return torch.flatten(x, 1)

    def embed(self, x: Tensor, record: dict[str, Tensor] | None = None) -> Tensor:
        """Input of the last linear layer (penultimate activations); `record` also gets the hidden fc outputs."""
        x = self.features(x, record)
        for name, layer in list(self.fcs.items())[:-1]:
            x = F.relu(layer(x))
            if record is not None:
                record[name] = x
            x = self.dropout(x)
        return x

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        """Every ReLU layer's output by layer name: conv blocks (before pooling), then hidden fc layers."""
        record: dict[str, Tensor] = {}
        self.embed(x, record)
        return record

    def forward(self, x: Tensor) -> Tensor:
        return list(self.fcs.values())[-1](self.embed(x))

    def weight_layers(self) -> dict[str, nn.Module]:
        """Layer name -> the Conv2d or Linear holding its weight, in network order."""
        layers: dict[str, nn.Module] = {name: block.conv for name, block in self.convs.items()}
        layers.update(self.fcs.items())
        return layers

    def widths(self) -> dict[str, int]:
        """Conv layer name -> its number of output channels."""
        return {name: block.conv.out_channels for name, block in self.convs.items()}

    def num_parameters(self) -> int:
        """Trainable parameters (BN affine included, running statistics excluded)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def replace_head(self, num_outputs: int, generator: torch.Generator | None = None) -> None:
        """Swap the last linear layer for a freshly initialised one with `num_outputs` outputs."""
        spec = dataclasses.replace(self.spec, num_outputs=num_outputs)
        name = spec.layer_names()[-1]
        old = self.fcs[name]
        self.fcs[name] = default_linear(old.in_features, num_outputs, generator).to(
            device=old.weight.device, dtype=old.weight.dtype
        )
        self.spec = spec


def build(spec: NetSpec, seed: int) -> ExpandableNet:
    """A freshly initialised network; the same seed gives the same weights."""
    return ExpandableNet(spec, generator=torch.Generator().manual_seed(seed))


def load_state(spec: NetSpec, state: dict[str, Tensor]) -> ExpandableNet:
    """Rebuild a network of `spec` (widened or not) from its state_dict; a mismatch raises RuntimeError."""
    net = build(spec, 0)
    net.load_state_dict(state)
    return net
