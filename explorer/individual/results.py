"""Few-shot results as they arrive: accuracies per (method, model size, task setup), with running mean and 95% CI,
each paired on the same target tasks with scratch (a size sweep's point: with its twin, scratch of exactly its own
architecture), and described in words for the table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from core.individual.result_row import ResultRow
from core.individual.twins import is_twin, twin_name, twin_strategy

DEFAULT = "default"
COLLECTIVE = "collective"
ORDER = ("learngene", "scratch", "front inheritance", "weight selection", "window", "collective", "nearest centroid")
GLOSSARY = (
    "<div style='color:#555;font-size:11px;line-height:1.45;margin-top:6px;max-width:1000px'>"
    "<b>inherited</b>: weights copied from the collective model, then trained further on the target task (or kept "
    "frozen). <b>front</b>: the new, randomly started layers between the image and an inherited block. "
    "<b>window</b>: another block of as many layers as the learngene, to see whether the criterion's pick matters. "
    "<b>width</b>: channels per layer as a share of the collective model's. <b>minus scratch</b>: accuracy minus "
    "scratch on the same target tasks (paired), in points, with its 95% interval: scratch of the learngene model's "
    "shape for Run's rows; in the size sweep, every point is compared with scratch of its own architecture (its "
    "<b>twin</b>, the row scratch (strategy) of the same size: the same network from random weights); an interval "
    "that includes 0 means no clear difference.</div>"
)

# Measured across five collective runs per dataset, 5-way 1-shot (docs/results.md; tests/test_explorer_widgets.py
# checks that these are the figures printed there): points against scratch, mean ± 95% interval across runs.
MEASURED = {
    "learngene": {"glyphs": "-3.5 ± 1.6", "Omniglot": "+2.9 ± 0.9"},
    "front inheritance": {"glyphs": "+18.9 ± 2.5", "Omniglot": "+14.2 ± 2.9"},
}


def reading_html(rows: list[dict]) -> str:
    """What the default Run's learngene-against-scratch row means, next to what five collective runs measured and
    where to see front inheritance; empty until a learngene row has its paired difference."""
    row = next((r for r in rows if r["method"] == "learngene" and r["vs_scratch"] is not None), None)
    if row is None:
        return ""
    d = row["vs_scratch"]
    side = "below" if d["mean"] < 0 else "above"
    p = d["p_value"]
    noise = (
        "one target task cannot tell"
        if p is None
        else (f"a clear difference, paired p = {p:.2g}" if p < 0.05 else f"within the noise, paired p = {p:.2g}")
    )
    measured = MEASURED["learngene"]
    front = MEASURED["front inheritance"]
    where = (
        "its rows are in the table"
        if any(r["method"].startswith("front") for r in rows)
        else "tick <i>other strategies and baselines</i> and press Run, or press Size sweep for its curve"
    )
    return (
        "<div style='font-size:12px;line-height:1.45;margin-top:6px;max-width:1000px'><b>Reading this:</b> "
        f"the paper's learngene is {abs(100 * d['mean']):.1f} points {side} scratch on these {d['tasks']} target "
        f"tasks ({noise}). That is what this page exists to show: across five collective runs per dataset (1 shot), "
        f"the learngene was {measured['glyphs']} points from scratch on glyphs and {measured['Omniglot']} on "
        f"Omniglot, while inheriting the collective's first layers in place (front inheritance) gained "
        f"{front['glyphs']} and {front['Omniglot']} points (docs/results.md). To see front inheritance here: "
        f"{where}.</div>"
    )


def is_sweep_size(size: str) -> bool:
    """Whether `size` is a width multiplier of the size sweep ("x1/4"), not the default or the collective's size."""
    return size.startswith("x")


def strategy(method: str) -> str:
    """The strategy a method belongs to (its curve on the size chart; a twin is a curve of its own)."""
    if is_twin(method):
        return method
    if method.startswith("front"):
        return "front inheritance"
    if method.startswith("weight selection"):
        return "weight selection"
    if method.startswith("window"):
        return method
    return {"collective-finetune": "collective", "nearest-centroid": "nearest centroid"}.get(method, method)


def _rank(method: str) -> int:
    name = strategy(twin_strategy(method) if is_twin(method) else method)
    key = "window" if name.startswith("window") else name
    return ORDER.index(key) if key in ORDER else len(ORDER)


def _twin_last(method: str) -> tuple[str, bool]:
    """Sorts a twin's rows right after its strategy's."""
    return (twin_strategy(method), True) if is_twin(method) else (method, False)


def _width(size: str) -> str:
    """ "x1/4" -> "1/4 width"."""
    return f"{size[1:]} width" if is_sweep_size(size) else ""


def sentence(method: str, size: str, learngene: str) -> str:
    """What a results row is, in words (e.g. "scratch: the learngene model's shape, every weight random")."""
    width = _width(size)
    at = f" at {width}" if width else ""
    if method == "learngene":
        return f"learngene{at}: {learngene} inherited, with a new front and head" + (
            f" {size[1:]} as wide" if width else ""
        )
    if method == "scratch":
        return "scratch: the learngene model's shape, every weight random"
    if is_twin(method):
        of = twin_strategy(method)
        shapes = {"weight selection": "the collective model's", "collective-finetune": "the collective's conv layers'"}
        shape = shapes.get(of, f"the {of} model's")
        return f"{method}{at}: {shape} architecture, every weight random (the twin its point is paired with)"
    if method.startswith("front"):
        block = method[len("front ") :] if method != "front inheritance" else "the first layers"
        return f"front inheritance{at}: {block} of the collective inherited as the first layers, new layers after"
    if method.startswith("weight selection"):
        factor = width or f"{Fraction(method.split('x')[-1]).limit_denominator(64)} width"
        return f"weight selection at {factor}: the whole collective model, each layer keeping evenly spaced channels"
    if method.startswith("window"):
        return f"{method}: another block of the same length inherited instead, with a new front and head"
    if method == "collective-finetune":
        return "the collective model's conv layers, fine-tuned with a new head on their features (the reference)"
    if method == "nearest-centroid":
        return "nearest centroid: class means of the collective model's features, no training"
    return method


@dataclass
class Series:
    """Accuracies of one method at one size for one task setup, in target-task order (as they arrive)."""

    method: str
    size: str
    setup: str
    params: int
    planned: int
    accuracies: list[float] = field(default_factory=list)
    status: str = "running"
    way: int | None = None
    learngene: str = ""
    finished: ResultRow | None = None  # core's row, once the method has finished

    def result(self) -> ResultRow:
        """The series as core's result row: the finished method's row, else the accuracies finished so far."""
        if self.finished is not None and self.finished.tasks == len(self.accuracies):
            return self.finished
        return ResultRow(self.method, self.params, tuple(self.accuracies), self.way, size=self.size)

    def row(self, reference: Series | None = None) -> dict:
        """A results-table row: core's row with the page's fields (its setup, the model in words, how many tasks
        are planned, its status) and the paired difference to `reference`, its scratch (or twin)."""
        result = self.result()
        mean, half = result.mean_ci95()
        paired = result.paired_with(reference.result()) if reference is not None and reference is not self else None
        return {
            **result.as_dict(),
            "size": self.size,
            "setup": self.setup,
            "model": sentence(self.method, self.size, self.learngene),
            "planned": self.planned,
            "mean_accuracy": None if math.isnan(mean) else round(mean, 4),
            "ci95": None if half is None else round(half, 4),
            "status": self.status,
            "vs_scratch": None
            if paired is None
            else {
                "mean": round(paired.mean, 4),
                "ci95": None if math.isnan(paired.ci95) else round(paired.ci95, 4),
                "p_value": None if math.isnan(paired.p_value) else paired.p_value,
                "tasks": paired.tasks,
            },
        }


class ResultStore:
    """All series of the session; a new run of the same key replaces the old one (same seed, same tasks)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], Series] = {}

    def add(
        self,
        method: str,
        size: str,
        setup: str,
        params: int,
        planned: int,
        accuracy: float,
        way: int | None = None,
        learngene: str = "",
    ) -> Series:
        """Record one finished target task."""
        key = (method, size, setup)
        series = self.series.get(key)
        if series is None or series.status != "running":
            series = self.series[key] = Series(method, size, setup, params, planned, way=way, learngene=learngene)
        series.params = params
        series.accuracies.append(float(accuracy))
        if len(series.accuracies) >= planned:
            series.status = "done"
        return series

    def add_row(self, row: dict, size: str, setup: str, way: int | None = None, learngene: str = "") -> None:
        """Record a core row: a finished method's (its series then shows core's row) or one found without events
        (a sweep point equal to a table row reuses it)."""
        key = (row["method"], size, setup)
        result = ResultRow.from_dict(row)
        series = self.series.get(key)
        if series is None or series.status != "done":
            series = self.series[key] = Series(
                row["method"],
                size,
                setup,
                row["params"],
                result.tasks,
                list(result.task_accuracies),
                "done",
                way,
                learngene,
            )
        series.finished = result

    def close_running(self, status: str) -> None:
        """Mark every unfinished series (after a cancel or an error): its points stay, flagged."""
        for series in self.series.values():
            if series.status == "running":
                series.status = status

    def clear(self) -> None:
        """Forget everything."""
        self.series.clear()

    def reference(self, series: Series) -> Series | None:
        """What a series is paired with: its twin (a size sweep's point), else the default-size scratch of a Run;
        none for scratch and twins, and none for a sweep's point before its twin arrives."""
        if series.method == "scratch" or is_twin(series.method):
            return None
        twin = self.series.get((twin_name(series.method), series.size, series.setup))
        swept = any(is_sweep_size(s.size) for s in self.series.values() if s.setup == series.setup)
        if twin is not None or is_sweep_size(series.size) or (swept and series.size == COLLECTIVE):
            return twin
        return self.series.get(("scratch", DEFAULT, series.setup))

    def rows(self) -> list[dict]:
        """Table rows grouped by setup: learngene first, then scratch and the other strategies, smallest first, each
        strategy's twins after it."""
        ordered = sorted(
            self.series.values(), key=lambda s: (s.setup, _rank(s.method), *_twin_last(s.method), s.params)
        )
        return [s.row(self.reference(s)) for s in ordered]

    def setups(self) -> list[str]:
        """The task setups shown, in order of first appearance."""
        return list(dict.fromkeys(s.setup for s in self.series.values()))
