"""Progress events the engine emits; the CLI's progress bar and the explorer's widgets both subscribe."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TaskStarted:
    """A source task begins (after any widening)."""

    task: int
    tasks: int
    epochs: int
    widths: dict[str, int]
    widened: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class EpochEnded:
    """A source-task epoch ended, with its loss, accuracy, criterion row and mean gradient norm per layer."""

    task: int
    epoch: int
    epochs: int
    loss: float
    accuracy: float
    layer_names: tuple[str, ...]
    signed: np.ndarray
    absolute: np.ndarray
    hist: np.ndarray
    grad_norm: np.ndarray | None = None


@dataclass(frozen=True)
class TaskFinished:
    """A source task finished and its checkpoint is on disk; `health` is its health record (core.collective.health)."""

    task: int
    tasks: int
    accuracy: float
    auroc_msp: float
    auroc_energy: float
    widths: dict[str, int]
    health: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetTaskFinished:
    """One few-shot target task finished for one method."""

    method: str
    task: int
    tasks: int
    accuracy: float
    params: int
    size: str = ""


@dataclass(frozen=True)
class MethodFinished:
    """All target tasks of one method (at one size) finished; `row` is its results-table row."""

    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanReady:
    """A few-shot job's targets are drawn and its methods planned: how many trainings it will report."""

    trainings: int
    way: int
    shot: int | None


@dataclass(frozen=True)
class Note:
    """A line for the user about the job (how its data was read); `important` notes show even when quiet."""

    text: str
    important: bool = True


Listener = Callable[[object], None]


class Cancelled(Exception):
    """Raised inside the engine when the caller's stop check says to stop."""


def emit(listeners: Iterable[Listener], event: object) -> None:
    """Send one event to every listener."""
    for listener in listeners:
        listener(event)


def check_stop(should_stop: Callable[[], bool] | None) -> None:
    """Raise Cancelled when the caller asked to stop."""
    if should_stop is not None and should_stop():
        raise Cancelled()
