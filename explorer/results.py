"""Few-shot results as they arrive: accuracies per (method, model size, task setup), with running mean and 95% CI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.stats import mean_ci95


@dataclass
class Series:
    """Accuracies of one method at one size for one task setup, in arrival order."""

    method: str
    size: str
    setup: str
    params: int
    planned: int
    accuracies: list[float] = field(default_factory=list)
    status: str = "running"

    def row(self) -> dict:
        """A results-table row."""
        mean, half = mean_ci95(self.accuracies)
        return {
            "method": self.method,
            "size": self.size,
            "setup": self.setup,
            "params": self.params,
            "tasks": len(self.accuracies),
            "planned": self.planned,
            "mean_accuracy": None if math.isnan(mean) else round(mean, 4),
            "ci95": None if math.isnan(half) else round(half, 4),  # undefined for a single task
            "status": self.status,
        }


class ResultStore:
    """All series of the session; a new run of the same key replaces the old one (same seed, same tasks)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], Series] = {}

    def add(self, method: str, size: str, setup: str, params: int, planned: int, accuracy: float) -> Series:
        """Record one finished target task."""
        key = (method, size, setup)
        series = self.series.get(key)
        if series is None or series.status != "running":
            series = self.series[key] = Series(method, size, setup, params, planned)
        series.params = params
        series.accuracies.append(float(accuracy))
        if len(series.accuracies) >= planned:
            series.status = "done"
        return series

    def close_running(self, status: str) -> None:
        """Mark every unfinished series (after a cancel or an error): its points stay, flagged."""
        for series in self.series.values():
            if series.status == "running":
                series.status = status

    def clear(self) -> None:
        """Forget everything."""
        self.series.clear()

    def rows(self) -> list[dict]:
        """Table rows, grouped by setup and method, smallest model first."""
        ordered = sorted(self.series.values(), key=lambda s: (s.setup, s.method, s.params))
        return [s.row() for s in ordered]

    def traces(self) -> dict[str, list[Series]]:
        """Series per chart trace, smallest model first: one trace per method (and setup, when several are shown)."""
        setups = {s.setup for s in self.series.values()}
        grouped: dict[str, list[Series]] = {}
        for s in self.series.values():  # first appearance fixes a trace's place, so traces are only ever appended
            name = s.method if len(setups) == 1 else f"{s.method} ({s.setup})"
            grouped.setdefault(name, []).append(s)
        return {name: sorted(group, key=lambda s: s.params) for name, group in grouped.items()}
