"""One optimiser step shared by the collective and the individual training loops: EWC penalty, finite check, step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from core.collective.ewc import EWC


class NonFiniteLoss(ArithmeticError):
    """The loss became NaN or infinite; the caller turns it into a message that names where it happened."""

    def __init__(self, value: float) -> None:
        super().__init__(f"the loss became {value}")
        self.value = value


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    model: nn.Module | None = None,
    ewc: EWC | None = None,
    after_backward: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Add the EWC penalty of `model`, backpropagate, call `after_backward` (gradients are there), step.

    Returns the loss that was minimised (detached); raises NonFiniteLoss before touching the weights.
    """
    if ewc is not None:
        loss = loss + ewc.penalty(model)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(loss.item())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if after_backward is not None:
        after_backward()
    optimizer.step()
    return loss.detach()
