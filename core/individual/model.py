"""Individual models (spec section 5): new layers around the inherited learngene block, and a new small head.

The paper's individual model puts a new random front before a deep inherited block. A block may also start at the
input layer (front inheritance) or sit in the middle; new layers then follow it ("back"), shaped like the collective's
remaining layers and scaled by the width multiplier. The default front fits the learngene: it maps the image channels
to the block's input channels and pools as often as the collective did before the block, so the block sees the
spatial size it was trained at.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.collective.network import ConvBlock, NetSpec, default_linear
from core.errors import LearngeneError, Setting
from core.individual.config import IndividualConfig
from core.learngene.gene import Learngene


@dataclass(frozen=True)
class IndividualSpec:
    """Everything that fixes an individual model's architecture: front, inherited block, back, head."""

    in_channels: int
    image_size: int
    front_widths: tuple[int, ...]
    front_pools: tuple[int, ...]
    block_layers: tuple[str, ...]
    block_widths: tuple[int, ...]
    block_pools: tuple[str, ...]
    head_hidden: tuple[int, ...]
    way: int
    back_widths: tuple[int, ...] = ()
    back_pools: tuple[int, ...] = ()

    @property
    def block_in_channels(self) -> int:
        """Channels entering the block (the front's last width, or the image's channels without a front)."""
        return self.front_widths[-1] if self.front_widths else self.in_channels

    def block_input_size(self) -> int:
        """Spatial side of the block's input."""
        return self.image_size // 2 ** len(self.front_pools)

    def feature_size(self) -> int:
        """Entries of the flattened conv output that the head reads."""
        size = self.block_input_size() // 2 ** (len(self.block_pools) + len(self.back_pools))
        channels = self.back_widths[-1] if self.back_widths else self.block_widths[-1]
        return channels * size * size

    def validate(self) -> IndividualSpec:
        """Return self, or raise LearngeneError naming the first impossible setting."""
        for part, widths, pools in (
            ("front", self.front_widths, self.front_pools),
            ("back", self.back_widths, self.back_pools),
        ):
            depth = len(widths)
            if any(w < 1 for w in widths):
                raise LearngeneError(f"the {part} layers need widths >= 1: raise the width multiplier")
            if any(not 1 <= p <= depth for p in pools) or len(set(pools)) != len(pools):
                raise LearngeneError(f"{part} pools {list(pools)} must name distinct {part} layers 1..{depth}")
        if any(p not in self.block_layers for p in self.block_pools):
            raise LearngeneError(f"block pools {list(self.block_pools)} must name block layers")
        if self.block_input_size() < 1 or self.feature_size() < 1:
            pools = len(self.front_pools) + len(self.block_pools) + len(self.back_pools)
            raise LearngeneError(f"{pools} pools are too many for {self.image_size}px images: use fewer front pools")
        if any(h < 1 for h in self.head_hidden) or self.way < 2:
            raise LearngeneError("head widths must be >= 1 and a task needs at least 2 classes")
        return self

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> IndividualSpec:
        """Rebuild from to_dict() output."""
        values = dict(data)
        for name in ("front_widths", "front_pools", "block_layers", "block_widths", "block_pools", "head_hidden"):
            values[name] = tuple(values[name])
        for name in ("back_widths", "back_pools"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def _pools_between(image_size: int, input_size: int) -> int:
    """How many 2x2 pools turn image_size into input_size."""
    count, size = 0, image_size
    while size > input_size:
        size //= 2
        count += 1
    return count


def scaled(width: int, multiplier: float) -> int:
    """A layer width times the multiplier, at least 1."""
    return max(1, round(width * multiplier))


def _front(
    learngene: Learngene,
    front_depth: int | None,
    width_multiplier: float,
    front_widths: tuple[int, ...] | None,
    front_pools: tuple[int, ...] | None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The new layers before the block: none when the block starts at the input layer."""
    pools_needed = _pools_between(learngene.image_size, learngene.input_size)
    if front_widths is None:
        if learngene.starts_at_input:
            return (), ()
        depth = max(2, pools_needed) if front_depth is None else front_depth
        if depth < 1:
            raise LearngeneError(
                Setting("front_depth", str(depth)), " is too small: the front needs at least 1 conv layer"
            )
        if width_multiplier <= 0:
            raise LearngeneError(f"width multiplier {width_multiplier} must be positive")
        c = learngene.in_channels
        front_widths = tuple(scaled(c / 2 ** (depth - 1 - i), width_multiplier) for i in range(depth - 1)) + (c,)
    elif front_widths[-1] != learngene.in_channels:
        raise LearngeneError(
            f"the front's last width {front_widths[-1]} must equal the learngene's input channels "
            f"{learngene.in_channels}: end the front widths with {learngene.in_channels} (the paper preset's "
            "64-128-256-512 front fits only a 512-channel block; use ",
            Setting("preset", "fast"),
            ")",
        )
    depth = len(front_widths)
    if front_pools is None:
        if depth < pools_needed:
            raise LearngeneError(
                f"a front of {depth} layers cannot pool {pools_needed} times to reach the learngene's "
                f"{learngene.input_size}px input: use ",
                Setting("front_depth", str(pools_needed)),
                " or more",
            )
        front_pools = tuple(round((i + 1) * depth / pools_needed) for i in range(pools_needed))
    return tuple(front_widths), tuple(front_pools)


def _back(learngene: Learngene, width_multiplier: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """New layers after the block, shaped like the collective's layers that followed it and scaled by the multiplier.

    None for a block that ends at the collective's last conv layer (the paper's case), or for a learngene file that
    does not record the collective's network.
    """
    network = learngene.network
    if network is None:
        return (), ()
    last = int(learngene.layers[-1].removeprefix("conv"))
    widths = tuple(scaled(w, width_multiplier) for w in network.widths[last:])
    pools = tuple(p - last for p in network.pool_after if p > last)
    return widths, pools


def fit_spec(
    learngene: Learngene,
    way: int,
    *,
    front_depth: int | None = None,
    width_multiplier: float = 1.0,
    front_widths: tuple[int, ...] | None = None,
    front_pools: tuple[int, ...] | None = None,
    head_hidden: tuple[int, ...] = (),
) -> IndividualSpec:
    """An individual architecture around a learngene: fitted front, the block, the scaled back, a new head.

    The default front has one layer per pool the collective applied before the block (at least 2). Its widths double
    layer by layer up to the block's input channels; the multiplier scales every front layer but the last (which must
    feed the block), and every back layer. Front pools go after evenly spaced front layers, the last one included.
    """
    front_widths, front_pools = _front(learngene, front_depth, width_multiplier, front_widths, front_pools)
    back_widths, back_pools = _back(learngene, width_multiplier)
    return IndividualSpec(
        in_channels=learngene.image_channels,
        image_size=learngene.image_size,
        front_widths=front_widths,
        front_pools=front_pools,
        block_layers=learngene.layers,
        block_widths=learngene.widths,
        block_pools=learngene.pools,
        head_hidden=tuple(head_hidden),
        way=way,
        back_widths=back_widths,
        back_pools=back_pools,
    ).validate()


def _conv_stack(widths: tuple[int, ...], generator: torch.Generator) -> nn.ModuleList:
    return nn.ModuleList(ConvBlock(widths[i], widths[i + 1], generator=generator) for i in range(len(widths) - 1))


class IndividualNet(nn.Module):
    """Front -> block -> back -> flatten -> head (training.train freezes inherited parts on request)."""

    def __init__(self, spec: IndividualSpec, generator: torch.Generator) -> None:
        super().__init__()
        self.spec = spec
        self.front = _conv_stack((spec.in_channels,) + spec.front_widths, generator)
        block_in = (spec.block_in_channels,) + spec.block_widths
        self.block = nn.ModuleDict(
            {n: ConvBlock(block_in[i], block_in[i + 1], generator=generator) for i, n in enumerate(spec.block_layers)}
        )
        self.back = _conv_stack((spec.block_widths[-1],) + spec.back_widths, generator)
        sizes = (spec.feature_size(),) + spec.head_hidden + (spec.way,)
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(default_linear(sizes[i], sizes[i + 1], generator))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.head = nn.Sequential(*layers)
        self._front_pools = frozenset(spec.front_pools)
        self._block_pools = frozenset(spec.block_pools)
        self._back_pools = frozenset(spec.back_pools)

    def front_features(self, x: torch.Tensor) -> torch.Tensor:
        """The new front's output, i.e. the block's input."""
        return _run(self.front, self._front_pools, x)

    def run_block(self, x: torch.Tensor) -> torch.Tensor:
        """The inherited block (with its pools) applied to a block input."""
        for name, layer in self.block.items():
            x = layer(x)
            if name in self._block_pools:
                x = F.max_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run(self.back, self._back_pools, self.run_block(self.front_features(x)))
        return self.head(torch.flatten(x, 1))

    def inherit(self, learngene: Learngene) -> None:
        """Copy the learngene's weights and BN statistics into the block."""
        if learngene.layers != self.spec.block_layers or learngene.widths != self.spec.block_widths:
            raise LearngeneError(
                f"learngene {learngene.label} does not fit this model's block {self.spec.block_layers}"
            )
        for name in learngene.layers:
            self.block[name].load_state_dict(learngene.layer_state(name))

    def num_parameters(self) -> int:
        """Trainable-sized entries of the whole model (running statistics excluded)."""
        return sum(p.numel() for p in self.parameters())

    def inherited_parameters(self) -> int:
        """Entries of the block (conv and BN affine)."""
        return sum(p.numel() for p in self.block.parameters())


def _run(layers: nn.ModuleList, pools: frozenset[int], x: torch.Tensor) -> torch.Tensor:
    for i, layer in enumerate(layers, start=1):
        x = layer(x)
        if i in pools:
            x = F.max_pool2d(x, 2)
    return x


def build_individual(spec: IndividualSpec, seed: int, learngene: Learngene | None = None) -> IndividualNet:
    """A model with PyTorch-default init from `seed`; with a learngene its block is inherited, else random (scratch)."""
    net = IndividualNet(spec.validate(), torch.Generator().manual_seed(seed))
    if learngene is not None:
        net.inherit(learngene)
    return net


def fitted_spec(learngene: Learngene, way: int, config: IndividualConfig) -> IndividualSpec:
    """The individual architecture for a learngene under a config."""
    return fit_spec(
        learngene,
        way,
        front_depth=config.front_depth,
        width_multiplier=config.width_multiplier,
        front_widths=config.front_widths,
        front_pools=config.front_pools,
        head_hidden=config.head_hidden,
    )


def narrow_spec(network: NetSpec, multiplier: float, way: int) -> NetSpec:
    """The collective's architecture at `multiplier` of its widths (conv and hidden), with a `way`-output head."""
    return dataclasses.replace(
        network,
        widths=tuple(scaled(w, multiplier) for w in network.widths),
        hidden=tuple(scaled(h, multiplier) for h in network.hidden),
        num_outputs=way,
    )
