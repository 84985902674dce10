"""Training an individual model on a support set and testing it on the query set (spec section 5).

A fresh optimiser per task (optionally reset every epoch, as the official code does), light shift augmentation,
BatchNorm statistics re-estimated on the support set (the inherited layers' kept, if the config says so), and a
deterministic evaluation (normalise only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.batchnorm import recalibrate_batchnorm
from core.collective.ewc import EWC
from core.collective.step import NonFiniteLoss, optimizer_step
from core.data.transforms import augment
from core.errors import LearngeneError
from core.events import check_stop
from core.individual.config import IndividualConfig
from core.individual.targets import TargetTask
from core.seeding import generator


def batches(order: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Mini-batches of a permutation; a trailing batch of one joins the previous one (BatchNorm needs two)."""
    parts = list(torch.split(order, size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def layout(x: torch.Tensor, config: IndividualConfig) -> torch.Tensor:
    """`x` in the memory format the config trains in (channels_last is 1.2-1.6x faster on CPU)."""
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def freeze(modules: Sequence[nn.Module]) -> None:
    """Fix inherited modules: no gradients (their BatchNorm layers stay in eval mode while the rest trains)."""
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)


def still_modules(inherited: Sequence[nn.Module], config: IndividualConfig) -> tuple[nn.Module, ...]:
    """The inherited modules whose BatchNorm statistics stay the collective's: frozen ones, or all with "keep"."""
    return tuple(inherited) if config.freeze or config.inherited_bn == "keep" else ()


def hold_statistics(modules: Sequence[nn.Module]) -> None:
    """Put the BatchNorm layers inside `modules` in eval mode: they normalise with, and keep, their statistics."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def optimizer_factory(
    model: nn.Module, inherited: Sequence[nn.Module], config: IndividualConfig
) -> Callable[[], torch.optim.Optimizer]:
    """A maker of fresh optimisers over the trainable parameters, the inherited ones at config.inherited_lr times the
    learning rate (config.freeze must have been applied to `inherited` already)."""
    old = {id(p) for module in inherited for p in module.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in old], "lr": config.lr}]
    groups.append({"params": [p for p in trainable if id(p) in old], "lr": config.lr * config.inherited_lr})
    groups = [g for g in groups if g["params"]]

    def optimizer() -> torch.optim.Optimizer:
        if config.optimizer == "adam":
            return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)

    return optimizer


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: IndividualConfig,
    seed: int,
    *,
    inherited: Sequence[nn.Module] = (),
    ewc: EWC | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Train on the support set for config.epochs with a fresh optimiser (optionally reset every epoch).

    `inherited` are the modules that came from the collective model: frozen with config.freeze, else trained at
    config.inherited_lr times the learning rate; frozen, or with config.inherited_bn "keep", their BatchNorm layers
    normalise with the collective's statistics and keep them.
    """
    g = generator(seed, 31)
    frozen = tuple(inherited) if config.freeze else ()
    freeze(frozen)
    still = still_modules(inherited, config)
    optimizer = optimizer_factory(model, inherited, config)
    opt = optimizer()
    for epoch in range(config.epochs):
        if config.reset_optimizer and epoch > 0:
            opt = optimizer()
        model.train()
        hold_statistics(still)
        for idx in batches(torch.randperm(len(y), generator=g), config.batch_size):
            check_stop(should_stop)
            xb = augment(x[idx], g) if config.augment else x[idx]
            loss = F.cross_entropy(model(layout(xb, config)), y[idx])
            try:
                optimizer_step(loss, opt, model=model, ewc=ewc)
            except NonFiniteLoss as exc:
                raise LearngeneError(
                    f"{exc} while training on a target task: lower the learning rate (now {config.lr})"
                ) from None


def fit_and_test(
    model: nn.Module,
    target: TargetTask,
    config: IndividualConfig,
    *,
    inherited: Sequence[nn.Module] = (),
    ewc: EWC | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> float:
    """Train on the support set, optionally recalibrate BatchNorm, and return query accuracy.

    Dropout draws from torch's global generator, so it is seeded from the task here (and restored afterwards).
    """
    devices = [p.device.index or 0 for p in list(model.parameters())[:1] if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(target.seed)
        train(
            model,
            target.support,
            target.support_labels,
            config,
            target.seed,
            inherited=inherited,
            ewc=ewc,
            should_stop=should_stop,
        )
    if config.recalibrate_bn:
        # an inherited block keeps a few per cent of its source statistics after a short run otherwise
        recalibrate_batchnorm(model, target.support, lambda x: layout(x, config), still_modules(inherited, config))
    return accuracy(model, target.query, target.query_labels, config)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: IndividualConfig) -> float:
    """Top-1 accuracy in eval mode (deterministic: no augmentation, BN running statistics, no dropout)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), 256):
            logits = model(layout(x[start : start + 256], config))
            correct += int((logits.argmax(1) == y[start : start + 256]).sum())
    return correct / len(y)
