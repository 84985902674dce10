"""What an interrupted command still delivers: the few-shot results finished so far, marked partial."""

from __future__ import annotations

from core.events import MethodFinished, TargetTaskFinished
from core.individual.result_row import ResultRow
from core.outputs import where as output_name


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, after the command saved what it had finished; the text says what and where."""


class FinishedResults:
    """A listener keeping every finished method row and the target tasks of the method in progress."""

    def __init__(self, way: int, shot: int) -> None:
        self.way, self.shot = way, shot
        self.rows: list[dict] = []
        self.points: list[dict] = []
        self.current: list[TargetTaskFinished] = []
        self.interrupted = False

    def __call__(self, event: object) -> None:
        if isinstance(event, TargetTaskFinished):
            self.current.append(event)
        elif isinstance(event, MethodFinished):
            (self.points if event.row.get("size") else self.rows).append(dict(event.row))
            self.current = []

    def so_far(self) -> tuple[list[dict], list[dict]]:
        """(rows, size points) finished so far, the method in progress as a row marked partial; sets `interrupted`."""
        self.interrupted = True
        rows, points = [dict(r, partial=False) for r in self.rows], [dict(p, partial=False) for p in self.points]
        if self.current:
            first = self.current[0]
            accuracies = tuple(e.accuracy for e in self.current)
            row = ResultRow(first.method, first.params, accuracies, self.way, self.shot, size=first.size).as_dict()
            (points if first.size else rows).append(dict(row, partial=True))
        return rows, points

    def summary(self, *outputs: str | None) -> str:
        """What the interrupt left, for the one-line message."""
        done = sum(r["tasks"] for r in self.rows + self.points) + len(self.current)
        where = [output_name(path) for path in outputs if path]
        saved = f"written to {' and '.join(where)}, marked partial" if where else "printed above, marked partial"
        return f"the results of {done} finished target-task trainings are {saved}"
