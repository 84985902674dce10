"""Shared look of the explorer: figure layouts, panel headings, inline messages."""

from __future__ import annotations

import html

import ipywidgets as widgets

FONT = dict(family="Helvetica, Arial, sans-serif", size=12, color="#222")
METHOD_COLOURS = {
    "learngene": "#d62728",
    "scratch": "#1f77b4",
    "collective-finetune": "#9467bd",
    "nearest-centroid": "#2ca02c",
}
WINDOW_COLOURS = ("#ff9896", "#ffbb78", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#c7c7c7")
_KIND_COLOURS = {"error": "#b00020", "warning": "#8a5a00", "info": "#1b5e20", "": "#444"}


def base_layout(height: int, **extra: object) -> dict:
    """Layout shared by every figure: white background, compact margins, readable font."""
    layout = dict(
        height=height,
        template="plotly_white",
        font=FONT,
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    )
    layout.update(extra)
    return layout


def heading(title: str, explanation: str) -> widgets.HTML:
    """A panel title with one line telling a student what the panel shows."""
    return widgets.HTML(
        f"<h3 style='margin:14px 0 2px 0'>{html.escape(title)}</h3>"
        f"<div style='color:#555;margin-bottom:6px'>{html.escape(explanation)}</div>"
    )


def message_html(text: str, kind: str = "") -> str:
    """An inline message (escaped): kind 'error', 'warning', 'info' or '' for plain status."""
    if not text:
        return ""
    colour = _KIND_COLOURS.get(kind, _KIND_COLOURS[""])
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


def method_colour(method: str, index: int = 0) -> str:
    """A stable colour per method; window ablations share a palette."""
    return METHOD_COLOURS.get(method, WINDOW_COLOURS[index % len(WINDOW_COLOURS)])
