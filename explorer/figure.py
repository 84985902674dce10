"""A plotly FigureWidget that background threads can update safely, and that no early change escapes."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import plotly.graph_objects as go


class LiveFigure(go.FigureWidget):
    """A FigureWidget for charts that a worker thread redraws while the browser talks to the same widget.

    Two plotly-widget traps, both found in the browser tests:
    - plotly sends each change as a message trait that it sets and clears at once. While ipywidgets applies
      a browser message (plotly's views send one after every redraw), traitlets merges the object's trait
      notifications, from any thread: a worker's set-and-clear in that window merges into "no change" and
      never reaches the browser. One lock keeps the two apart.
    - Change messages that arrive before the browser has loaded plotly's widget code are dropped, so a chart
      updated in its first seconds on a page (or built before it is displayed inside a box) would stay empty.
      Until the browser reports a drawn view, every change also re-sends the full figure state, which the
      view reads when it draws.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._update_lock = threading.RLock()
        self._drawn = False
        self.observe(self._view_reported, names=["_js2py_layoutDelta", "_js2py_traceDeltas"])

    def _view_reported(self, change: dict) -> None:
        if change["new"] is not None:
            self._drawn = True

    def set_state(self, sync_data: dict) -> None:
        """Apply a browser message, never while a thread is in `updating()`."""
        with self._update_lock:
            super().set_state(sync_data)

    @contextlib.contextmanager
    def updating(self) -> Iterator["LiveFigure"]:
        """Change the figure (from any thread) as one batch, apart from browser messages."""
        with self._update_lock:
            with self.batch_update():
                yield self
            if not self._drawn:
                self.sync_state()

    def sync_state(self) -> None:
        """Copy the full figure into the widget model (plotly does it itself only when displayed directly)."""
        with self._update_lock:
            self._repr_mimebundle_()

    def snapshot(self) -> go.Figure:
        """A plain, consistent copy (for export)."""
        with self._update_lock:
            return go.Figure(self.to_dict())
