"""Elastic weight consolidation that copes with a growing network: new parameters carry no penalty."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def _overlap(param: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """The part of `param` that existed when `anchor` was taken (widening only appends entries)."""
    return param[tuple(slice(0, s) for s in anchor.shape)]


class EWC:
    """Diagonal-Fisher penalty (lambda/2) * sum F (theta - theta*)^2, anchored at consolidated weights."""

    def __init__(self, lam: float, exclude: Callable[[str], bool] = lambda name: False) -> None:
        self.lam = lam
        self.exclude = exclude
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def consolidate(self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Estimate the Fisher on (input, label) batches and anchor at the current weights; older Fisher adds up."""
        params = {n: p for n, p in model.named_parameters() if p.requires_grad and not self.exclude(n)}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        was_training = model.training
        model.eval()
        count = 0
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            log_probs = torch.log_softmax(model(x), dim=1)
            log_probs.gather(1, y[:, None]).sum().backward()
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2
            count += len(y)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for n, f in fisher.items():
            f /= max(count, 1)
            old = self.fisher.get(n)
            if old is not None and old.shape == _overlap(f, old).shape:
                _overlap(f, old).add_(old)
            self.fisher[n] = f
            self.anchor[n] = params[n].detach().clone()

    def rebase(self, model: nn.Module) -> None:
        """After widening, re-read the anchor of existing entries (function-preserving rescaling moved them)."""
        params = dict(model.named_parameters())
        for n in list(self.anchor):
            if n in params:
                self.anchor[n] = _overlap(params[n], self.anchor[n]).detach().clone()

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """The EWC penalty for the model's current weights (0 before the first consolidation)."""
        params = dict(model.named_parameters())
        total = torch.zeros((), device=next(model.parameters()).device)
        for n, anchor in self.anchor.items():
            if n in params:
                total = total + (self.fisher[n] * (_overlap(params[n], anchor) - anchor) ** 2).sum()
        return 0.5 * self.lam * total

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to store in a checkpoint."""
        out = {f"ewc.fisher.{n}": t for n, t in self.fisher.items()}
        out.update({f"ewc.anchor.{n}": t for n, t in self.anchor.items()})
        return out

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from `state()` output."""
        self.fisher = {k[len("ewc.fisher.") :]: v for k, v in tensors.items() if k.startswith("ewc.fisher.")}
        self.anchor = {k[len("ewc.anchor.") :]: v for k, v in tensors.items() if k.startswith("ewc.anchor.")}
