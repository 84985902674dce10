"""The map's data beside a run's criterion: a training's epochs and task health added as their events arrive, and
the open-world errors of the transfer criterion, computed on first use."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.collective.criterion import CriterionLog, EpochCriterion
from core.collective.histogram import tails
from core.errors import LearngeneError
from core.events import EpochEnded, TaskFinished
from explorer.criterion.text import LIVE_TRANSFER
from explorer.widgets.style import message_html
from explorer.widgets.wording import page_line


def with_epoch(log: CriterionLog | None, event: EpochEnded, tau: float) -> CriterionLog:
    """`log` with the event's epoch recorded; a new log at `tau` when the event's layers or epochs are not the log's."""
    names = tuple(event.layer_names)
    if log is None or log.layer_names != names or log.epochs != event.epochs:
        log = CriterionLog.empty(names, tau, event.epochs)
    no_norm = np.full(len(names), np.nan)
    log.record(event.task, event.epoch, EpochCriterion(names, event.signed, event.absolute, event.hist, no_norm, 0))
    return log


def with_task_health(health: list[dict], event: TaskFinished) -> list[dict]:
    """The health rows with the finished task's own (replacing an earlier row of that task); unchanged without one."""
    if not event.health:
        return health
    return [row for row in health if row["task"] != event.task] + [dict(task=event.task, **event.health)]


class OpenWorldErrors:
    """A shown run's (tasks, layers) open-world errors from `source`, computed on first use; without them (a live
    map, or a run whose errors cannot be computed) NaN, with `note` saying why."""

    def __init__(self, source: Callable[[], np.ndarray] | None = None) -> None:
        self.source = source
        self.values: np.ndarray | None = None
        self.note = ""

    def matrix(self, tasks: int, layers: int) -> np.ndarray:
        """The errors, or a (tasks, layers) NaN matrix when there are none."""
        if self.values is None and self.source is not None:
            try:
                self.values = np.asarray(self.source(), dtype=float)
            except LearngeneError as exc:
                self.note = message_html(page_line(exc), "error")
            self.source = None
        if self.values is None:
            self.note = self.note or message_html(LIVE_TRANSFER, "info")
            return np.full((tasks, layers), np.nan)
        return self.values


class ShownTails:
    """The shown log's histogram tails, which every tau's map is read from: kept while tau moves, computed again
    when another log is shown or the log records an epoch (a live training)."""

    def __init__(self) -> None:
        self._log: CriterionLog | None = None
        self._key: tuple = ()
        self._tail = np.zeros(0)

    def of(self, log: CriterionLog, absolute: bool) -> np.ndarray:
        """`tails(log.hist, absolute)`, computed only when the log or what it recorded changed."""
        key = (log.tasks, int(log.recorded.sum()), float(np.nansum(log.signed)), absolute)
        if log is not self._log or key != self._key:
            self._log, self._key, self._tail = log, key, tails(log.hist, absolute)
        return self._tail
