"""The page's jobs on the shared Dask engine (core.jobs.shared): one job per panel at a time, followed live,
cancelled politely; identical jobs from several pages have one key, so they run once and every page follows them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from typing import Any

from distributed import Future

from core.events import Cancelled, Listener
from core.jobs.cluster import INTERACTIVE, Engine
from core.jobs.execute import Job, Outcome
from explorer.widgets.outcome import Outcome as PanelOutcome
from explorer.widgets.outcome import one_line


class JobRunner:
    """One job at a time for a panel: submitted to the engine, its events to the panel's listeners, its end to
    `on_done` (in another thread) as the panel's Outcome; Cancel stops it unless another page still waits for it."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._future: Future | None = None
        self._on_done: Callable[[PanelOutcome], None] | None = None
        self._cancelled = False
        self._idle = threading.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """Whether this panel's job is still running."""
        return not self._idle.is_set()

    def start(
        self,
        job: Job,
        listeners: Iterable[Listener],
        on_done: Callable[[PanelOutcome], None],
        result: Callable[[Outcome], Any] = lambda outcome: outcome,
        on_queued: Callable[[int], None] = lambda ahead: None,
    ) -> bool:
        """Submit `job` unless one runs; `result` turns the job's outcome into what on_done receives, `on_queued`
        hears how many jobs are ahead of it when it has to wait for a worker.

        The submission runs beside the page (the first one may start a local cluster, which takes seconds), so the
        click returns at once; a Cancel pressed meanwhile applies as soon as the job is submitted.
        """
        with self._lock:
            if self.busy:
                return False
            self._idle.clear()
            self._on_done, self._cancelled = on_done, False
        threading.Thread(
            target=self._submit, args=(job, listeners, result, on_queued), daemon=True, name="submit"
        ).start()
        return True

    def _submit(
        self,
        job: Job,
        listeners: Iterable[Listener],
        result: Callable[[Outcome], Any],
        on_queued: Callable[[int], None],
    ) -> None:
        on_done = self._on_done
        try:
            engine = self._engine()
            future = engine.submit(job, listeners=listeners, priority=INTERACTIVE)
        except Exception as exc:  # noqa: BLE001 - no engine or a refused job: a line on the page, never a traceback
            self._finish(on_done, PanelOutcome("error", one_line(exc), error=exc))
            return
        with self._lock:
            self._future, cancelled = future, self._cancelled
        future.add_done_callback(lambda f: self._finish(on_done, _outcome(engine, f, result)))
        if cancelled:
            self.cancel()
            return
        ahead = engine.queue_position(future)
        if ahead and not future.done():
            on_queued(ahead)

    def cancel(self) -> None:
        """Stop following this panel's job; the job itself stops when no other page waits for it."""
        with self._lock:
            future, on_done = self._future, self._on_done
            self._cancelled = True
        if future is not None and not self._engine().cancel(future) and on_done is not None:
            self._finish(on_done, PanelOutcome("cancelled", "cancelled here: the job goes on for the other pages"))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the panel's job (if any) to end and be shown; True when none is left."""
        return self._idle.wait(timeout)

    def _finish(self, on_done: Callable[[PanelOutcome], None], outcome: PanelOutcome) -> None:
        with self._lock:
            if self._idle.is_set() or (self._on_done is not None and on_done is not self._on_done):
                return  # this job's end was shown already (a released job's callback, or a second report)
        try:
            on_done(outcome)  # still busy here, so no second job starts before the buttons are reset
        except Exception:  # noqa: BLE001 - a failing UI callback must not stop the page's next job
            pass
        finally:
            with self._lock:
                self._future = self._on_done = None
            self._idle.set()


def _outcome(engine: Engine, future: Future, result: Callable[[Outcome], Any]) -> PanelOutcome:
    """How a job ended, for the panel: done (with its result), cancelled, or an error line."""
    try:
        return PanelOutcome("done", result=result(engine.outcome(future)))
    except (Cancelled, CancelledError):
        engine.wait_stopped(future.key)  # what the stopped job wrote is settled before the panel reads the disk
        return PanelOutcome("cancelled", "cancelled: finished parts are kept")
    except Exception as exc:  # noqa: BLE001 - the page shows a line, never a traceback
        return PanelOutcome("error", one_line(exc), error=exc)
