"""Precise BatchNorm statistics: re-estimate running means and variances on a fixed set of images.

Running statistics are an exponential average over the last batches of training, which can lag behind the weights
(Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021, call the fix PreciseBN). One pass over the images in
train mode with a cumulative average replaces them by the statistics those weights actually produce.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def recalibrate_batchnorm(
    model: nn.Module,
    x: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
    keep: Sequence[nn.Module] = (),
) -> None:
    """Re-estimate the statistics of every trainable BatchNorm layer on `x` (in chunks of 256), then eval mode.

    Layers whose weights are frozen, and those inside `keep`, keep their statistics. `prepare` turns a chunk into
    the model's input layout.
    """
    kept = {id(m) for module in keep for m in module.modules()}
    norms = [
        m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.weight.requires_grad and id(m) not in kept
    ]
    model.eval()
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for start in range(0, len(x), 256):
            model(prepare(x[start : start + 256]))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()
