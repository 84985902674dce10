"""A plotly figure shown in the page through an ipywidgets Output, redrawn after each change, from any thread."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Iterator, Sequence

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
    static file, loaded once for all charts. `updating(in_place=True)` and `patch(..., in_place=True)` instead hand the
    figure to plotly.js's `Plotly.react` on the chart the page already shows (a script in the hidden `channel` Output),
    which redraws only what changed; `patch` sends it before the figure's own validated copy is brought up to date.
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
        self._shown: dict | None = None  # `_sent` parsed, for in-place patches (None: parse it when needed)
        self._reacts = 0  # in-place redraws so far: a later whole chart differs from the Output's even if equal
        self._drawn = False  # whether the page holds a chart drawn while visible (in place needs one to redraw)
        self._stale = False  # whether in-place patches were shown that the figure's own copy has not taken yet
        self.publish()

    def placeholder(self, text: str | None) -> None:
        """Show `text` (HTML) instead of the chart, so that a page without data shows no empty axes; None: the chart."""
        with self._lock:
            if text:
                self.note.value = (
                    "<div style='border:1px dashed #bbb;border-radius:4px;padding:18px;color:#666;background:#fafafa;"
                    f"margin:4px 0'>{text}</div>"
                )
            if text:
                self._drawn = False  # a chart drawn while hidden would keep the hidden size: redraw it whole
            self.note.layout.display = "" if text else "none"
            self.widget.layout.display = "none" if text else ""

    @contextlib.contextmanager
    def updating(self, in_place: bool = False) -> Iterator[LiveFigure]:
        """Change the figure (from any thread) as one batch, then show it: `in_place` in the chart already shown
        (a live chart: plotly.js redraws it several times faster than a new one)."""
        with self._lock:
            yield self
            if self._in_place(in_place):
                self.run(self._redraw(self._spec()))
            else:
                self.publish()

    def _in_place(self, asked: bool) -> bool:
        """Whether to redraw in place: asked, not turned off for benchmarks, and a visible chart to redraw."""
        return asked and self._drawn and os.environ.get(REDRAW_ENV, "") != "whole"

    def patch(self, traces: Sequence[dict], layout: dict, in_place: bool = False, send: bool = True) -> str | None:
        """Update trace i with `traces[i]` and the layout with `layout` (nested dicts merge, other values replace,
        None removes) and show the result; `in_place` redraws the chart already shown and leaves the figure's own
        copy to be brought up to date when it is next read (plotly's validation takes about ten times longer than
        sending, and would take the CPU from the browser while it redraws). Returns the page's in-place redraw (a
        JavaScript function; None when the chart was sent whole), which `send=False` leaves to the caller to `run`."""
        with self._lock:
            if not self._in_place(in_place):
                self._apply(traces, layout)
                self.publish()
                return None
            if self._shown is None:
                self._shown = json.loads(self._sent)
            spec = self._shown
            for shown, update in zip(spec["data"], traces):
                _merge(shown, update)
            _merge(spec["layout"], layout)
            self._sent = json.dumps(spec, separators=(",", ":"), allow_nan=False)
            self._stale = True
            redraw = self._redraw(self._sent)
            if send:
                self.run(redraw)
            return redraw

    def _catch_up(self) -> None:
        """Bring the figure's own copy up to what the page was last sent, after in-place patches (one rebuild, however
        many patches were shown since the last read)."""
        if not getattr(self, "_stale", False):
            return
        with self._lock:
            if not self._stale:
                return
            self._stale = False
            spec = json.loads(self._sent)
            go.Figure.data.fset(self, ())
            self.add_traces(spec["data"])
            go.Figure.layout.fset(self, spec["layout"])

    @property
    def data(self) -> tuple:
        """The traces, up to date with every patch shown."""
        self._catch_up()
        return go.Figure.data.fget(self)

    @data.setter
    def data(self, value: object) -> None:
        self._catch_up()
        go.Figure.data.fset(self, value)

    @property
    def layout(self) -> go.Layout:
        """The layout, up to date with every patch shown."""
        self._catch_up()
        return go.Figure.layout.fget(self)

    @layout.setter
    def layout(self, value: object) -> None:
        self._catch_up()
        go.Figure.layout.fset(self, value)

    def to_dict(self) -> dict:
        """The figure as a dict, up to date with every patch shown."""
        self._catch_up()
        return super().to_dict()

    def _apply(self, traces: Sequence[dict], layout: dict) -> None:
        """The patch applied to the figure itself (plotly validates every value)."""
        for trace, update in zip(self.data, traces):
            trace.update(update)
        for key, value in layout.items():
            if isinstance(value, dict):
                self.layout[key].update(value)
            else:
                self.layout[key] = value

    def _spec(self) -> str:
        """The figure as JSON for plotly.js (plotly's encoder: numpy arrays to lists, NaN to null), kept as sent."""
        self._sent = self.to_json()
        self._shown = None
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
            self._drawn = self.widget.layout.display != "none" and self.frame.layout.display != "none"

    def hide(self, hidden: bool) -> None:
        """Hide the chart with its placeholder (a chart drawn while hidden is redrawn whole once shown)."""
        with self._lock:
            self.frame.layout.display = "none" if hidden else ""
            if hidden:
                self._drawn = False

    def _redraw(self, spec: str) -> str:
        """The page's redraw of the chart it shows with `spec` (JSON), as a JavaScript function (the Output keeps the
        chart it holds)."""
        with self._lock:
            self._reacts += 1
        return (  # an error goes to the console: the script runner would only show it in the hidden Output
            f"() => {{ try {{ const spec = {spec}; "
            f"document.querySelectorAll('.{self.css_class} .js-plotly-plot').forEach(gd => "
            f"window.Plotly.react(gd, spec.data, spec.layout, {json.dumps(CONFIG)})); }} catch (error) {{ "
            "console.error('the chart was not redrawn in place:', error); } }"
        )

    def run(self, now: str | None, after_frame: str | None = None) -> None:
        """Run in-place redraws in the page, in one message: `now` at once, `after_frame` once the page has painted
        the frame that shows `now` (any chart's redraws; a second message would be handled before that frame)."""
        code = (f"({now})();" if now else "") + (
            f"requestAnimationFrame(() => setTimeout({after_frame}, 0));" if after_frame else ""
        )
        if code:
            with self._lock:
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


def _merge(target: dict, update: dict) -> None:
    """`update` merged into `target` as plotly's `update` does: nested dicts merge, None removes, the rest replaces."""
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = value
