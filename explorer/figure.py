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

    # class attributes, so that plotly's attribute guard lets instances set them
    widget: widgets.Output | None = None
    note: widgets.HTML | None = None
    frame: widgets.VBox | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()
        height = self.layout.height or 450
        self.widget = widgets.Output(layout=widgets.Layout(min_height=f"{height}px"))
        self.note = widgets.HTML(layout=widgets.Layout(display="none"))
        self.note.add_class("lg-placeholder")
        self.frame = widgets.VBox([self.note, self.widget])
        self.publish()

    def placeholder(self, text: str | None) -> None:
        """Show `text` (HTML) instead of the chart, so that a page without data shows no empty axes; None: the chart."""
        with self._lock:
            if text:
                self.note.value = (
                    "<div style='border:1px dashed #bbb;border-radius:4px;padding:18px;color:#666;background:#fafafa;"
                    f"margin:4px 0'>{text}</div>"
                )
            self.note.layout.display = "" if text else "none"
            self.widget.layout.display = "none" if text else ""

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
