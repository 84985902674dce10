"""What panel 1 draws about a collective run: per-epoch loss and accuracy, per-task widths, AUROC and health."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from core.collective.health import health_rows
from core.collective.runs import CONFIG, Run, open_run
from core.errors import LearngeneError
from core.events import EpochEnded, TaskFinished, TaskStarted


@dataclass
class CollectiveHistory:
    """What the panel draws: per-epoch loss/accuracy, per-task widths, AUROC and health records."""

    epochs: list[tuple[int, int, int, float, float]] = field(default_factory=list)
    widths: dict[int, dict[str, int]] = field(default_factory=dict)
    auroc: dict[int, tuple[float, float]] = field(default_factory=dict)
    health: dict[int, dict] = field(default_factory=dict)
    expansion_tasks: int = 0
    recorded_health: bool = True  # False for runs trained before health was recorded

    @classmethod
    def from_run(cls, run: Run) -> CollectiveHistory:
        """History of a run's finished tasks, read from its metrics."""
        history = cls(expansion_tasks=run.config.expansion_tasks)
        if run.finished_tasks == 0:
            return history
        metrics = run.metrics()
        for row in metrics:
            if row["kind"] == "epoch":
                history.epochs.append((row["task"], row["epoch"], run.config.epochs, row["loss"], row["accuracy"]))
            elif row["kind"] == "task":
                history.widths[row["task"]] = dict(row["widths"])
                history.auroc[row["task"]] = (_num(row.get("auroc_msp")), _num(row.get("auroc_energy")))
        history.health = {row["task"]: row for row in health_rows(metrics)}
        history.recorded_health = bool(history.health)
        return history

    def observe(self, event: object) -> None:
        """Add one engine event."""
        if isinstance(event, TaskStarted):
            self.widths[event.task] = dict(event.widths)
        elif isinstance(event, EpochEnded):
            self.epochs.append((event.task, event.epoch, event.epochs, event.loss, event.accuracy))
        elif isinstance(event, TaskFinished):
            self.widths[event.task] = dict(event.widths)
            self.auroc[event.task] = (event.auroc_msp, event.auroc_energy)
            if event.health:
                self.health[event.task] = dict(task=event.task, **event.health)

    def health_rows(self) -> list[dict]:
        """Health records in task order (with core's healthy verdict recomputed by the chart)."""
        return [self.health[t] for t in sorted(self.health)]


def committed_history(run_dir: Path) -> CollectiveHistory:
    """The history a training job continues: the finished tasks of a run being resumed, else nothing."""
    try:
        return CollectiveHistory.from_run(open_run(run_dir)) if (run_dir / CONFIG).is_file() else CollectiveHistory()
    except LearngeneError:
        return CollectiveHistory()


def finished_tasks(run_dir: Path) -> int:
    """Tasks committed in a run directory (0 when it holds no readable run)."""
    try:
        return open_run(run_dir).finished_tasks if (run_dir / CONFIG).is_file() else 0
    except LearngeneError:
        return 0


def _num(value: object) -> float:
    return math.nan if value is None else float(value)
