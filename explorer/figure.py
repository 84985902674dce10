"""A plotly figure shown in the page through an ipywidgets Output, redrawn whole after each change, from any thread."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import ipywidgets as widgets
import plotly.graph_objects as go

MIMETYPE = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False}


class LiveFigure(go.Figure):
    """A go.Figure that draws itself into `widget` (an ipywidgets Output) at the end of every `updating()` batch.

    Not plotly's FigureWidget: in the browser tests a FigureWidget chart was sometimes drawn once and then
    ignored every later update, without an error in the page, while the kernel sent them (see README; the
    cause in its anywidget front end was not found). Here each change sends the whole figure as plotly's
    MIME bundle; the page draws it with the plotly.js that plotly's JupyterLab/Voila extension serves as a
    static file, loaded once for all charts.
    """

    widget: widgets.Output | None = None  # a class attribute, so plotly's attribute guard lets instances set it

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()
        height = self.layout.height or 450
        self.widget = widgets.Output(layout=widgets.Layout(min_height=f"{height}px"))
        self.publish()

    @contextlib.contextmanager
    def updating(self) -> Iterator[LiveFigure]:
        """Change the figure (from any thread) as one batch; the page then shows the result."""
        with self._lock:
            yield self
            self.publish()

    def publish(self) -> None:
        """Send the whole figure to the page, replacing what the Output showed."""
        with self._lock:
            spec = json.loads(self.to_json())  # plotly's encoder: numpy arrays to lists, NaN to null
            bundle = {
                MIMETYPE: {"data": spec.get("data", []), "layout": spec.get("layout", {}), "config": CONFIG},
                "text/plain": "a plotly chart: it needs the jupyterlab-plotly extension, which comes with plotly",
            }
            self.widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    def shown(self) -> dict:
        """The figure as the page last received it (data, layout, config)."""
        return self.widget.outputs[0]["data"][MIMETYPE]

    def snapshot(self) -> go.Figure:
        """A plain, consistent copy (for export)."""
        with self._lock:
            return go.Figure(self.to_dict())
