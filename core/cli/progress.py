"""Command-line subscriber to engine events: a tqdm progress bar on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm

from core.events import EpochEnded, MethodFinished, Note, TargetTaskFinished, TaskFinished, TaskStarted


class CollectiveBar:
    """Progress over all epochs of all tasks, showing task, epoch, loss and accuracy; appears with the first task."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, TaskStarted):
            if self.bar is None:
                self.bar = tqdm(
                    total=event.tasks * event.epochs,
                    unit="epoch",
                    file=sys.stderr,
                    disable=not self.enabled,
                    dynamic_ncols=True,
                )
            self.bar.n = event.task * event.epochs
            self.bar.set_description(f"task {event.task + 1}/{event.tasks}")
        elif isinstance(event, EpochEnded) and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                epoch=f"{event.epoch + 1}/{event.epochs}", loss=f"{event.loss:.3f}", acc=f"{event.accuracy:.2f}"
            )
        elif isinstance(event, TaskFinished) and self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


class TargetBar:
    """Progress over few-shot target tasks of every method; each result is printed as soon as it is known."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.bar = tqdm(total=total, unit="task", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled

    def __call__(self, event: object) -> None:
        if isinstance(event, TargetTaskFinished):
            self.bar.update(1)
            label = f"{event.method} {event.size}".strip()
            self.bar.set_description(label)
            if self.enabled:
                self.bar.write(
                    f"{label}: target task {event.task + 1}/{event.tasks} accuracy {event.accuracy:.3f}",
                    file=sys.stderr,
                )
        elif isinstance(event, MethodFinished):
            self.bar.refresh()

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()


class NotePrinter:
    """Prints the engine's notes about a job on stderr as `learngene COMMAND: ...` (quiet keeps the important ones)."""

    def __init__(self, command: str, quiet: bool = False) -> None:
        self.command = command
        self.quiet = quiet

    def __call__(self, event: object) -> None:
        if isinstance(event, Note) and (event.important or not self.quiet):
            sys.stderr.write(f"learngene {self.command}: {event.text}\n")
