"""Panel 1's chart: training loss and accuracy per epoch, channels per layer after each task, open-world AUROC."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.collective.history import CollectiveHistory
from explorer.widgets.live_figure import LiveFigure
from explorer.widgets.style import base_layout

# Trace order in the figure: loss, accuracy, chance line, AUROC (MSP), AUROC (energy), layer widths (a heatmap).
LOSS, ACCURACY, CHANCE, AUROC_MSP, AUROC_ENERGY, WIDTHS = range(6)
MAX_CELL_TEXT = 16  # tasks up to which every width cell carries its number (later: only where a width changes)
PLACEHOLDER = (
    "Loss, accuracy, layer widths and open-world AUROC appear here while a run trains, or when you pick a run."
)


def new_figure() -> LiveFigure:
    """The panel's 2x2 figure: loss, accuracy, layer widths (a layers x tasks map), open-world AUROC."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "Training loss per epoch",
            "Training accuracy per epoch",
            "Channels per layer after each task (the network grows)",
            "Open-world AUROC per task",
        ),
        horizontal_spacing=0.16,
        vertical_spacing=0.2,
    )
    fig.add_trace(
        go.Scatter(
            name="loss",
            mode="lines",
            line=dict(color="#1f77b4"),
            showlegend=False,
            hovertemplate="task %{x:.2f}<br>loss %{y:.4f}<extra></extra>",
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            name="accuracy",
            mode="lines",
            line=dict(color="#2ca02c"),
            showlegend=False,
            hovertemplate="task %{x:.2f}<br>accuracy %{y:.3f}<extra></extra>",
        ),
        1,
        2,
    )
    fig.add_trace(
        go.Scatter(
            name="chance", mode="lines", line=dict(color="#999", dash="dot"), legend="legend2", hoverinfo="skip"
        ),
        2,
        2,
    )
    fig.add_trace(
        go.Scatter(
            name="max softmax",
            mode="lines+markers",
            line=dict(color="#d62728"),
            legend="legend2",
            hovertemplate="task %{x}<br>AUROC (MSP) %{y:.3f}<extra></extra>",
        ),
        2,
        2,
    )
    fig.add_trace(
        go.Scatter(
            name="energy",
            mode="lines+markers",
            line=dict(color="#ff7f0e"),
            legend="legend2",
            hovertemplate="task %{x}<br>AUROC (energy) %{y:.3f}<extra></extra>",
        ),
        2,
        2,
    )
    fig.add_trace(
        go.Heatmap(
            colorscale="Blues",
            showscale=False,
            name="channels",
            textfont=dict(size=9),
            hovertemplate="%{y} after task %{x}: %{z} channels<extra></extra>",
        ),
        2,
        1,
    )
    layout = base_layout(
        560,
        legend2=dict(x=1.0, y=0.42, xanchor="right", yanchor="top", orientation="h", font=dict(size=10)),
        margin=dict(l=60, r=20, t=40, b=50),
    )
    fig.update_layout(**layout)
    fig.update_xaxes(title_text="task (fraction: epochs within it)", row=1, col=1)
    fig.update_xaxes(title_text="task (fraction: epochs within it)", row=1, col=2)
    fig.update_xaxes(title_text="task", row=2, col=1)
    fig.update_xaxes(title_text="task", row=2, col=2)
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_yaxes(title_text="AUROC (unknown vs seen)", range=[0, 1.02], row=2, col=2)
    return LiveFigure(fig)


def draw(fig: LiveFigure, history: CollectiveHistory, in_place: bool = False) -> None:
    """Redraw every trace from the history (one batched message, `in_place` in the chart shown while training);
    every layer is one row of the widths map."""
    if not history.widths and not history.epochs:
        fig.placeholder(PLACEHOLDER)
        return
    layers = list(next(iter(history.widths.values()), {}).keys()) if history.widths else []
    tasks = sorted(history.widths)
    with fig.updating(in_place):
        xs = [t + (e + 1) / n for t, e, n, _, _ in history.epochs]
        fig.data[LOSS].update(x=xs, y=[row[3] for row in history.epochs])
        fig.data[ACCURACY].update(x=xs, y=[row[4] for row in history.epochs])
        auroc_tasks = sorted(history.auroc)
        fig.data[AUROC_MSP].update(x=auroc_tasks, y=[_none(history.auroc[t][0]) for t in auroc_tasks])
        fig.data[AUROC_ENERGY].update(x=auroc_tasks, y=[_none(history.auroc[t][1]) for t in auroc_tasks])
        span = [min(tasks, default=0), max(tasks, default=0)]
        fig.data[CHANCE].update(x=span, y=[0.5, 0.5], name="chance")
        z = [[history.widths[t].get(name) for t in tasks] for name in layers]
        fig.data[WIDTHS].update(x=tasks, y=layers, z=z, text=width_labels(z), texttemplate="%{text}")
        end = history.expansion_tasks - 0.5
        grows = 0 < history.expansion_tasks <= max(tasks, default=-1)
        fig.layout.shapes = (
            [
                dict(
                    type="line",
                    xref="x3",
                    yref="y3 domain",
                    x0=end,
                    x1=end,
                    y0=0,
                    y1=1,
                    line=dict(color="#d62728", width=2, dash="dot"),
                )
            ]
            if grows
            else []
        )
    fig.placeholder(None)


def width_labels(z: list[list[int | None]]) -> list[list[str]]:
    """Cell labels of the widths map: every width on short runs; on longer ones the first width and each change (a
    growth step) that is at least a label's width after the previous label (the hover text gives every cell)."""
    gap = math.ceil(len(z[0]) / MAX_CELL_TEXT) if z else 1
    labels = []
    for row in z:
        shown, last = [], -gap
        for i, v in enumerate(row):
            label = v is not None and (i == 0 or row[i - 1] != v) and i - last >= gap
            shown.append(str(v) if label or (gap == 1 and v is not None) else "")
            last = i if shown[-1] else last
        labels.append(shown)
    return labels


def _none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value
