"""Command-line subscriber to engine events: a tqdm progress bar on stderr."""
from __future__ import annotations

import sys

from tqdm import tqdm

from core.events import EpochEnded, MethodFinished, TargetTaskFinished, TaskFinished, TaskStarted


class CollectiveBar:
    """Progress over all epochs of all tasks, showing task, epoch, loss and accuracy."""

    def __init__(self, tasks: int, epochs: int, start_task: int = 0, enabled: bool = True) -> None:
        self.bar = tqdm(total=tasks * epochs, initial=start_task * epochs, unit="epoch", file=sys.stderr, disable=not enabled, dynamic_ncols=True)

    def __call__(self, event: object) -> None:
        if isinstance(event, TaskStarted):
            self.bar.n = event.task * event.epochs
            self.bar.set_description(f"task {event.task + 1}/{event.tasks}")
        elif isinstance(event, EpochEnded):
            self.bar.update(1)
            self.bar.set_postfix(epoch=f"{event.epoch + 1}/{event.epochs}", loss=f"{event.loss:.3f}", acc=f"{event.accuracy:.2f}")
        elif isinstance(event, TaskFinished):
            self.bar.refresh()

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()


class TargetBar:
    """Progress over few-shot target tasks of every method; each result is printed as soon as it is known."""

    def __init__(self, total: int, enabled: bool = True, stream_json: bool = False) -> None:
        self.bar = tqdm(total=total, unit="task", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
        self.stream_json = stream_json

    def __call__(self, event: object) -> None:
        if isinstance(event, TargetTaskFinished):
            self.bar.update(1)
            label = f"{event.method} {event.size}".strip()
            self.bar.set_description(label)
            self.bar.write(f"{label}: target task {event.task + 1}/{event.tasks} accuracy {event.accuracy:.3f}", file=sys.stderr)
        elif isinstance(event, MethodFinished):
            self.bar.refresh()

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()
