"""Function-preserving widening of a conv layer (Net2WiderNet), with BN statistics copied for every new channel.

The paper's code copies BN statistics only for the last new channel; here each new channel gets its source's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from core.collective.network import ExpandableNet
from core.errors import LearngeneError


def _conv_position(layer: str, count: int) -> int:
    """0-based position of `layer` among conv1..conv{count}."""
    names = [f"conv{i}" for i in range(1, count + 1)]
    if layer not in names:
        raise LearngeneError(f"{layer!r} is not a conv layer of this network: choose one of conv1..conv{count}")
    return names.index(layer)


def _check_extra(layer: str, extra: int) -> None:
    if extra < 1:
        raise LearngeneError(f"widening {layer} by {extra} channels adds nothing: give at least 1 extra channel")


def _empty_like(cls: type[nn.Module], *args: object, like: nn.Module, **kwargs: object) -> nn.Module:
    """An uninitialised module on `like`'s device and dtype, in its train/eval mode and with its requires_grad flags."""
    reference = like.weight
    module = skip_init(cls, *args, device=reference.device, dtype=reference.dtype, **kwargs)
    module.train(like.training)
    for name, param in module.named_parameters():
        param.requires_grad_(getattr(like, name).requires_grad)
    return module


def widen(net: ExpandableNet, layer: str, extra: int, *, generator: torch.Generator, noise: float = 0.0) -> None:
    """Add `extra` output channels to conv `layer`, each a copy of a random original channel; outputs stay the same.

    The next layer's inputs from a replicated channel are divided by that channel's copy count. With `noise` > 0 the
    new channels' conv weights get Gaussian noise of std noise * std(original weights), which breaks exactness.
    """
    position = _conv_position(layer, len(net.convs))
    _check_extra(layer, extra)
    if noise < 0:
        raise LearngeneError(f"widening noise is {noise}: use 0 (exact copies) or a small positive factor such as 0.01")
    block = net.convs[layer]
    old_conv, old_bn = block.conv, block.bn
    width = old_conv.out_channels
    mapping = torch.cat([torch.arange(width), torch.randint(0, width, (extra,), generator=generator)])
    counts = torch.bincount(mapping, minlength=width)
    device, dtype = old_conv.weight.device, old_conv.weight.dtype
    idx = mapping.to(device)
    last = position + 1 == len(net.convs)
    scale = counts.to(device=device, dtype=dtype)[idx]
    with torch.no_grad():
        conv = _empty_like(nn.Conv2d, old_conv.in_channels, width + extra, 3, padding=1, like=old_conv)
        conv.weight.copy_(old_conv.weight[idx])
        conv.bias.copy_(old_conv.bias[idx])
        if noise > 0:
            fresh = torch.randn(conv.weight[width:].shape, generator=generator, dtype=dtype).to(device)
            conv.weight[width:] += noise * old_conv.weight.std() * fresh
        bn = _empty_like(nn.BatchNorm2d, width + extra, eps=old_bn.eps, momentum=old_bn.momentum, like=old_bn)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(old_bn, name)[idx])
        bn.num_batches_tracked.copy_(old_bn.num_batches_tracked)
        if last:
            following = _next_linear(net.fcs["fc1"], idx, scale, net.spec.feature_size() ** 2)
        else:
            following = _next_conv(net.convs[f"conv{position + 2}"].conv, idx, scale)
    block.conv, block.bn = conv, bn
    if last:
        net.fcs["fc1"] = following
    else:
        net.convs[f"conv{position + 2}"].conv = following
    widths = list(net.spec.widths)
    widths[position] += extra
    net.spec = dataclasses.replace(net.spec, widths=tuple(widths))


def _next_conv(old: nn.Conv2d, idx: Tensor, scale: Tensor) -> nn.Conv2d:
    """The following conv reading the widened channels: input slices copied and divided by copy counts."""
    conv = _empty_like(nn.Conv2d, len(idx), old.out_channels, 3, padding=1, like=old)
    conv.weight.copy_(old.weight[:, idx] / scale.view(1, -1, 1, 1))
    conv.bias.copy_(old.bias)
    return conv


def _next_linear(old: nn.Linear, idx: Tensor, scale: Tensor, per_channel: int) -> nn.Linear:
    """fc1 reading the widened last conv: each channel owns `per_channel` consecutive inputs (flatten order C,H,W)."""
    out = old.out_features
    linear = _empty_like(nn.Linear, len(idx) * per_channel, out, like=old)
    blocks = old.weight.reshape(out, -1, per_channel)[:, idx] / scale.view(1, -1, 1)
    linear.weight.copy_(blocks.reshape(out, -1))
    linear.bias.copy_(old.bias)
    return linear


def apply_schedule(
    net: ExpandableNet,
    schedule: Sequence[tuple[int, str, int]],
    task: int,
    *,
    generator: torch.Generator,
    noise: float = 0.0,
) -> list[tuple[str, int]]:
    """Widen `net` by every schedule entry of `task`, in schedule order; return the (layer, extra) pairs applied."""
    done = []
    for when, layer, extra in schedule:
        if when == task:
            widen(net, layer, extra, generator=generator, noise=noise)
            done.append((layer, extra))
    return done


def widths_after(widths: Sequence[int], schedule: Sequence[tuple[int, str, int]], up_to_task: int) -> tuple[int, ...]:
    """Conv widths once the schedule's entries for tasks <= `up_to_task` are applied (no network needed)."""
    result = list(widths)
    for when, layer, extra in schedule:
        if when <= up_to_task:
            position = _conv_position(layer, len(result))
            _check_extra(layer, extra)
            result[position] += extra
    return tuple(result)
