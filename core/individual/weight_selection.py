"""Weight selection (Xu et al., "Initializing Models with Larger Ones", ICLR 2024): a smaller copy of a trained network.

Every layer of the smaller network takes evenly spaced entries of the larger one's trained layer, consistently
across layers: a conv layer keeps the selected output channels of the selected input channels, BatchNorm keeps the
parameters and running statistics of the selected channels, fc1 keeps the inputs of the selected last-conv channels
at every spatial position. The head (last linear layer) is new.
"""

from __future__ import annotations

import torch

from core.collective.network import ExpandableNet, NetSpec, build
from core.errors import LearngeneError


def evenly_spaced(count: int, keep: int) -> torch.Tensor:
    """`keep` evenly spaced indices out of `count` (floor(i * count / keep)), the paper's uniform selection."""
    if not 1 <= keep <= count:
        raise LearngeneError(f"cannot select {keep} of {count} channels: choose a width multiplier in (0, 1]")
    return torch.div(torch.arange(keep) * count, keep, rounding_mode="floor")


def select_weights(base: ExpandableNet, spec: NetSpec, seed: int) -> ExpandableNet:
    """A network of `spec` (narrower than `base`, same depth) initialised by weight selection from `base`.

    The head comes from `seed` (PyTorch's default init), as do layers that cannot be selected (none here).
    """
    if len(spec.widths) != len(base.spec.widths) or len(spec.hidden) != len(base.spec.hidden):
        raise LearngeneError("weight selection needs a network of the same depth as the collective model")
    net = build(spec, seed)
    with torch.no_grad():
        previous = torch.arange(spec.in_channels)
        for name, block in net.convs.items():
            source = base.convs[name]
            keep = evenly_spaced(source.conv.out_channels, block.conv.out_channels)
            block.conv.weight.copy_(source.conv.weight[keep][:, previous])
            block.conv.bias.copy_(source.conv.bias[keep])
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(block.bn, key).copy_(getattr(source.bn, key)[keep])
            block.bn.num_batches_tracked.copy_(source.bn.num_batches_tracked)
            previous = keep
        per_channel = spec.feature_size() ** 2
        previous = (previous[:, None] * per_channel + torch.arange(per_channel)).flatten()
        linears = list(net.fcs.items())[:-1]
        for name, layer in linears:
            source = base.fcs[name]
            keep = evenly_spaced(source.out_features, layer.out_features)
            layer.weight.copy_(source.weight[keep][:, previous])
            layer.bias.copy_(source.bias[keep])
            previous = keep
    return net
