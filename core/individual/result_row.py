"""One method's few-shot result on a set of target tasks: the one row type from which the engine's tables, the
command line's partial results, the sweep and the explorer's table are all built, so a row means the same thing
wherever it is read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.stats import PairedDifference, mean_ci95, paired_difference

ROW_FIELDS = (
    "method",
    "layers",
    "params",
    "inherited_params",
    "mean_accuracy",
    "ci95",
    "tasks",
    "way",
    "shot",
    "seconds",
    "task_accuracies",
)


@dataclass(frozen=True)
class ResultRow:
    """A method's accuracy on each target task (in task order), with what it is and how big it is."""

    method: str
    params: int
    task_accuracies: tuple[float, ...]
    way: int | None = None
    shot: int | None = None
    layers: str = ""
    inherited_params: int = 0
    seconds: float = 0.0
    size: str = ""

    @property
    def tasks(self) -> int:
        """How many target tasks the row has finished."""
        return len(self.task_accuracies)

    def mean_ci95(self) -> tuple[float, float | None]:
        """Mean accuracy and the half-width of its 95% interval over the target tasks (None for a single task)."""
        mean, half = mean_ci95(self.task_accuracies)
        return mean, None if math.isnan(half) else half

    def paired_with(self, reference: ResultRow) -> PairedDifference | None:
        """This row minus `reference`, paired on the target tasks both have finished (the same first tasks, in
        order); None when they share none."""
        n = min(self.tasks, reference.tasks)
        return paired_difference(self.task_accuracies[:n], reference.task_accuracies[:n]) if n else None

    def as_dict(self) -> dict:
        """The JSON and CSV row (ROW_FIELDS, then `size` for a size sweep's point)."""
        mean, half = self.mean_ci95()
        row = {
            "method": self.method,
            "layers": self.layers,
            "params": self.params,
            "inherited_params": self.inherited_params,
            "mean_accuracy": mean,
            "ci95": half,
            "tasks": self.tasks,
            "way": self.way,
            "shot": self.shot,
            "seconds": self.seconds,
            "task_accuracies": list(self.task_accuracies),
        }
        if self.size:
            row["size"] = self.size
        return row

    @classmethod
    def from_dict(cls, row: dict) -> ResultRow:
        """A row read back from a table (JSON, a finished job's result, an event)."""
        return cls(
            method=row["method"],
            params=int(row["params"]),
            task_accuracies=tuple(float(a) for a in row["task_accuracies"]),
            way=row.get("way"),
            shot=row.get("shot"),
            layers=row.get("layers", ""),
            inherited_params=int(row.get("inherited_params", 0)),
            seconds=float(row.get("seconds", 0.0)),
            size=row.get("size", ""),
        )


def add_paired(rows: Sequence[dict], reference: dict, key: str = "vs_scratch") -> None:
    """Give every row its paired difference to `reference` over the same target tasks (mean, 95% CI, p-value)."""
    for row in rows:
        if row is not reference and len(row["task_accuracies"]) == len(reference["task_accuracies"]):
            row[key] = paired_difference(row["task_accuracies"], reference["task_accuracies"]).as_dict()
