"""Throttled widget updates: a job's events change state often, the page redraws at most a few times a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from explorer.widgets.outcome import one_line


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
