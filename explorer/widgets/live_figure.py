"""A plotly figure shown in the page through an ipywidgets Output, redrawn after each change, from any thread."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Iterator

import ipywidgets as widgets
import plotly.graph_objects as go

MIMETYPE = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False}
REDRAW_ENV = "LEARNGENE_REDRAW"  # "whole": in-place updates send a new chart instead (benchmarks compare the two)
_NUMBERS = itertools.count()


class LiveFigure(go.Figure):
    """A go.Figure that draws itself into `widget` (an ipywidgets Output) at the end of every `updating()` batch.

    Not plotly's FigureWidget: in the browser tests a FigureWidget chart was sometimes drawn once and then
    ignored every later update, without an error in the page, while the kernel sent them (see docs/explorer.md; the
    cause in its anywidget front end was not found). Here each change sends the whole figure as plotly's
    MIME bundle; the page draws it with the plotly.js that plotly's JupyterLab/Voila extension serves as a
    static file, loaded once for all charts. `updating(in_place=True)` instead hands the figure to plotly.js's
    `Plotly.react` on the chart the page already shows (a script in the hidden `channel` Output), which redraws only
    what changed.
    """

    # class attributes, so that plotly's attribute guard lets instances set them
    widget: widgets.Output | None = None
    note: widgets.HTML | None = None
    frame: widgets.VBox | None = None
    channel: widgets.Output | None = None
    css_class = ""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()
        height = self.layout.height or 450
        self.widget = widgets.Output(layout=widgets.Layout(min_height=f"{height}px"))
        self.note = widgets.HTML(layout=widgets.Layout(display="none"))
        self.note.add_class("lg-placeholder")
        self.css_class = f"lg-chart-{next(_NUMBERS)}"
        self.widget.add_class(self.css_class)
        self.channel = widgets.Output(layout=widgets.Layout(display="none"))
        self.frame = widgets.VBox([self.note, self.widget, self.channel])
        self._sent = "{}"
        self._reacts = 0  # in-place redraws so far: a later whole chart differs from the Output's even if equal
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
    def updating(self, in_place: bool = False) -> Iterator[LiveFigure]:
        """Change the figure (from any thread) as one batch, then show it: `in_place` in the chart already shown."""
        with self._lock:
            yield self
            if in_place and os.environ.get(REDRAW_ENV, "") != "whole":
                self.react()
            else:
                self.publish()

    def _spec(self) -> str:
        """The figure as JSON for plotly.js (plotly's encoder: numpy arrays to lists, NaN to null), kept as sent."""
        self._sent = self.to_json()
        return self._sent

    def publish(self) -> None:
        """Send the whole figure to the page, replacing what the Output showed."""
        with self._lock:
            spec = json.loads(self._spec())
            bundle = {
                MIMETYPE: {"data": spec.get("data", []), "layout": spec.get("layout", {}), "config": CONFIG},
                "text/plain": "a plotly chart: it needs the jupyterlab-plotly extension, which comes with plotly",
            }
            metadata = {"lg-in-place-redraws": self._reacts} if self._reacts else {}
            self.widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": metadata},)

    def react(self) -> None:
        """Redraw the chart the page shows in place with the figure (the Output keeps the chart it holds)."""
        with self._lock:
            self._reacts += 1
            code = (  # an error goes to the console: the script runner would only show it in the hidden Output
                f"(() => {{ try {{ const spec = {self._spec()}; "
                f"document.querySelectorAll('.{self.css_class} .js-plotly-plot').forEach(gd => "
                f"window.Plotly.react(gd, spec.data, spec.layout, {json.dumps(CONFIG)})); }} catch (error) {{ "
                "console.error('the chart was not redrawn in place:', error); } })();"
            )
            self.channel.outputs = (
                {"output_type": "display_data", "data": {"application/javascript": code}, "metadata": {}},
            )

    def shown(self) -> dict:
        """The figure as the page last received it (data, layout, config), whole or in place."""
        spec = json.loads(self._sent)
        return {"data": spec.get("data", []), "layout": spec.get("layout", {}), "config": CONFIG}

    def snapshot(self) -> go.Figure:
        """A plain, consistent copy (for export)."""
        with self._lock:
            return go.Figure(self.to_dict())
