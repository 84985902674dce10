"""Several target tasks' individual models trained side by side as one network (grouped convolutions).

M models of one architecture become one: each conv layer is a grouped convolution with M groups (BatchNorm over
the M x C channels keeps every model's statistics apart), each linear layer a batched matrix product. Every model
still sees its own support images in its own order with its own augmentation, drawn from its task's generator in
the same sequence as when it trains alone, and its loss and gradients involve only its own weights, so the results
equal one-at-a-time training up to floating-point rounding. Small models on a CPU spend most of a step on per-layer
overhead, which the M models then share (benchmarks/bench_individual.py measures the speed-up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.batchnorm import recalibrate_batchnorm
from core.collective.network import ConvBlock
from core.data.transforms import augment
from core.errors import LearngeneError
from core.events import check_stop
from core.individual.config import IndividualConfig
from core.individual.head import CosineLinear
from core.individual.model import IndividualNet
from core.individual.targets import TargetTask
from core.individual.training import batches, freeze, hold_statistics, optimizer_factory, still_modules
from core.seeding import generator


def _sequence(model: IndividualNet) -> tuple[list[tuple[ConvBlock, bool, bool]], list[nn.Linear]]:
    """The model as (conv block, pool after it, inherited) in order, then its linear layers."""
    spec = model.spec
    convs = [(b, i in spec.front_pools, False) for i, b in enumerate(model.front, start=1)]
    convs += [(model.block[n], n in spec.block_pools, True) for n in spec.block_layers]
    convs += [(b, i in spec.back_pools, False) for i, b in enumerate(model.back, start=1)]
    return convs, [layer for layer in model.head if isinstance(layer, nn.Linear)]


class StackedNet(nn.Module):
    """M individual models of one spec as one network; input (batch, M x C, H, W), output (batch, M, way)."""

    def __init__(self, models: Sequence[IndividualNet]) -> None:
        super().__init__()
        self.count = len(models)
        sequences = [_sequence(m) for m in models]
        convs, self.pools, self.inherited = [], [], []
        for position, (_, pool, inherited) in enumerate(sequences[0][0]):
            blocks = [s[0][position][0] for s in sequences]
            convs.append(_stack_block(blocks))
            self.pools.append(pool)
            self.inherited.append(inherited)
        self.convs = nn.ModuleList(convs)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for position in range(len(sequences[0][1])):
            layers = [s[1][position] for s in sequences]
            self.weights.append(nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]).clone()))
            biases = [
                torch.zeros(layer.out_features) if layer.bias is None else layer.bias.detach() for layer in layers
            ]
            self.biases.append(nn.Parameter(torch.stack(biases).clone(), requires_grad=layers[0].bias is not None))
        last = sequences[0][1][-1]
        self.cosine_scale = last.scale if isinstance(last, CosineLinear) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        for conv, pool in zip(self.convs, self.pools):
            x = F.relu(conv[1](conv[0](x)))
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.reshape(batch, self.count, -1)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if i == last and self.cosine_scale is not None:
                return self.cosine_scale * torch.einsum(
                    "bmi,moi->bmo", F.normalize(x, dim=-1), F.normalize(weight, dim=-1)
                )
            x = torch.einsum("bmi,moi->bmo", x, weight) + bias
            if i < last:
                x = F.relu(x)
        return x

    def inherited_modules(self) -> list[nn.Module]:
        """The stacked conv blocks that hold the inherited layers of every model."""
        return [conv for conv, inherited in zip(self.convs, self.inherited) if inherited]


def _stack_block(blocks: Sequence[ConvBlock]) -> nn.Sequential:
    """Grouped conv + BatchNorm holding the given blocks' weights and statistics, model after model."""
    first = blocks[0]
    count, cin, cout = len(blocks), first.conv.in_channels, first.conv.out_channels
    conv = nn.Conv2d(count * cin, count * cout, 3, padding=1, groups=count)
    bn = nn.BatchNorm2d(count * cout, eps=first.bn.eps, momentum=first.bn.momentum)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([b.conv.weight for b in blocks]))
        conv.bias.copy_(torch.cat([b.conv.bias for b in blocks]))
        for key in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, key).copy_(torch.cat([getattr(b.bn, key) for b in blocks]))
    return nn.Sequential(conv, bn)


def _layout(x: torch.Tensor, config: IndividualConfig) -> torch.Tensor:
    """(batch, M, C, H, W) images as the stacked network's (batch, M x C, H, W) input, in the config's layout."""
    x = x.reshape(x.shape[0], -1, *x.shape[3:])
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def fit_and_test_stacked(
    models: Sequence[IndividualNet],
    targets: Sequence[TargetTask],
    config: IndividualConfig,
    *,
    inherit: bool,
    should_stop: Callable[[], bool] | None = None,
) -> list[float]:
    """Train model m on target task m's support set, all side by side; return each one's query accuracy.

    The same training as `core.individual.training.fit_and_test` (optimiser, batches, augmentation, frozen or
    slower inherited layers, BatchNorm re-estimated on the support set or kept), for models without dropout or EWC.
    """
    if len({len(t.support_labels) for t in targets}) != 1 or len({len(t.query_labels) for t in targets}) != 1:
        raise ValueError("stacked training needs target tasks with equally many support and query images")
    device = targets[0].support.device
    net = StackedNet(models).to(device)
    if config.channels_last:
        net.to(memory_format=torch.channels_last)
    inherited = net.inherited_modules() if inherit else []
    frozen = inherited if config.freeze else []
    freeze(frozen)
    still = still_modules(inherited, config)
    optimizer = optimizer_factory(net, inherited, config)

    gens = [generator(t.seed, 31) for t in targets]
    labels = torch.stack([t.support_labels for t in targets], dim=1)
    opt = optimizer()
    for epoch in range(config.epochs):
        if config.reset_optimizer and epoch > 0:
            opt = optimizer()
        net.train()
        hold_statistics(still)
        orders = [
            batches(torch.randperm(len(t.support_labels), generator=g), config.batch_size)
            for t, g in zip(targets, gens)
        ]
        for step in range(len(orders[0])):
            check_stop(should_stop)
            parts = []
            for t, g, order in zip(targets, gens, orders):
                xb = t.support[order[step]]
                parts.append(augment(xb, g) if config.augment else xb)
            x = _layout(torch.stack(parts, dim=1), config)
            y = torch.stack([labels[order[step], m] for m, order in enumerate(orders)], dim=1)
            logits = net(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum") / y.shape[0]
            if not torch.isfinite(loss):
                raise LearngeneError(
                    f"the loss became {loss.item()} while training on a target task: lower the learning rate "
                    f"(now {config.lr})"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if config.recalibrate_bn:
        support = torch.stack([t.support for t in targets], dim=1)
        recalibrate_batchnorm(net, support, lambda x: _layout(x, config), still)
    net.eval()
    query = torch.stack([t.query for t in targets], dim=1)
    answers = torch.stack([t.query_labels for t in targets], dim=1)
    with torch.no_grad():
        predicted = torch.cat([net(_layout(query[i : i + 256], config)).argmax(-1) for i in range(0, len(query), 256)])
    return [int(c) / len(answers) for c in (predicted == answers).sum(dim=0)]  # exact fractions, as accuracy() gives
