"""One background job at a time, cancellable, with throttled widget updates (workers never print)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import LearngeneError
from core.events import Cancelled
from explorer.wording import page_terms

StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Outcome:
    """How a job ended: status is 'done', 'cancelled' or 'error'; message is one line for the user."""

    status: str
    message: str = ""
    result: Any = None


class Worker:
    """Runs a job function in a daemon thread; refuses a second job while one runs.

    The job receives a `should_stop` callable to pass to the engine. `on_done(outcome)` runs in
    the worker thread after the job, whatever happened, so the caller can re-enable its buttons.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def busy(self) -> bool:
        """Whether a job is running now."""
        with self._lock:
            return self._thread is not None

    def start(self, job: Callable[[StopCheck], Any], on_done: Callable[[Outcome], None]) -> bool:
        """Start `job` unless one is running; returns whether it started."""
        with self._lock:
            if self._thread is not None:
                return False
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(job, on_done), daemon=True, name="learngene-worker")
            self._thread.start()
            return True

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running job (if any); returns True when no job is left running."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def _run(self, job: Callable[[StopCheck], Any], on_done: Callable[[Outcome], None]) -> None:
        try:
            outcome = Outcome("done", result=job(self._stop.is_set))
        except Cancelled:
            outcome = Outcome("cancelled", "cancelled: finished parts are kept")
        except Exception as exc:  # noqa: BLE001 - the UI must show a line, never a traceback
            outcome = Outcome("error", one_line(exc))
        try:
            on_done(outcome)  # still "busy" here, so no second job starts before the buttons are reset
        except Exception:  # noqa: BLE001 - a failing UI callback must not kill the thread noisily
            pass
        finally:
            with self._lock:
                self._thread = None


def one_line(exc: BaseException) -> str:
    """The message a user sees for an error, in page terms: LearngeneError's own line, else its type and first line."""
    if isinstance(exc, LearngeneError):
        return page_terms(str(exc))
    return f"unexpected {type(exc).__name__}: {exc}".splitlines()[0]


class Throttle:
    """Calls `render()` at most once per `interval` seconds; a skipped request is rendered later by a timer.

    `flush()` renders the last state at once (use it when a job ends). Renders never overlap, and never
    run while another thread holds `lock` to change the state they read. A render that fails does not stop
    the job: `on_error` gets its one-line message.
    """

    def __init__(
        self, render: Callable[[], None], interval: float = 0.2, on_error: Callable[[str], None] = lambda line: None
    ) -> None:
        self.render = render
        self.interval = interval
        self.on_error = on_error
        self.lock = threading.RLock()  # hold it while changing what render() reads
        self._last = 0.0
        self._dirty = False
        self._timer: threading.Timer | None = None

    def request(self) -> None:
        """Note that the state changed; render now if the interval has passed, else soon."""
        with self.lock:
            self._dirty = True
            wait = self._last + self.interval - time.monotonic()
            if wait <= 0:
                self._render()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Render the pending state now, if any."""
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._dirty:
                self._render()

    def _on_timer(self) -> None:
        with self.lock:
            self._timer = None
            if self._dirty:
                self._render()

    def _render(self) -> None:
        self._dirty = False
        self._last = time.monotonic()
        try:
            self.render()
        except Exception as exc:  # noqa: BLE001 - a drawing hiccup must not kill the training thread
            self.on_error(one_line(exc))
