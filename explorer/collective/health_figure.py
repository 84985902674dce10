"""The health chart of the collective model: can it still learn after each task? (loss of plasticity, issue 12).

Left: training accuracy on each task's own images and the effective rank of the penultimate features (as a share
of the first task's rank), with core's limits for "unhealthy" as dashed lines and grey columns where a task broke
them. Right: per layer, the share of ReLU units never active on a fixed probe batch (dead units).
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.collective.health import COLLAPSED_RANK, UNHEALTHY_ACCURACY, unhealthy_tasks
from explorer.widgets.live_figure import LiveFigure
from explorer.widgets.style import base_layout

ACCURACY, RANK, ACCURACY_LIMIT, RANK_LIMIT, DEAD = range(5)
UNHEALTHY_FILL = "rgba(120,120,120,0.35)"
NO_RUN = "The health chart fills in task by task while the collective model trains: pick a run or train one."
LIVE = "The health of the first task appears here when it ends."
NO_HEALTH = (
    "This run was trained before health was recorded, so there is nothing to show here: train a new run to see "
    "whether the network can still learn after each task."
)
EXPLANATION = (
    "<div style='color:#444;max-width:1000px;font-size:12px;line-height:1.5'><b>Health.</b> A network that keeps "
    "learning fits each new task's images (training accuracy near 1) and keeps many directions in its features "
    "(rank). When it loses that plasticity, accuracy falls towards chance, units die and the rank collapses. "
    f"<b>Grey columns</b> mark such tasks (accuracy below {UNHEALTHY_ACCURACY:g}, or rank below "
    f"{COLLAPSED_RANK:g} of the first task's): there the gradients are small because the network stopped learning, "
    "so the same columns of the criterion map in panel 2 must not be read as stable layers.</div>"
)


def new_figure() -> LiveFigure:
    """Accuracy and relative rank over tasks (left), dead units per layer over tasks (right)."""
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.56, 0.44],
        horizontal_spacing=0.12,
        subplot_titles=("Can it still learn? Per task, after training", "Dead ReLU units (never active on a probe)"),
    )
    fig.add_trace(
        go.Scatter(
            name="training accuracy",
            mode="lines+markers",
            line=dict(color="#2ca02c"),
            marker=dict(size=5),
            hovertemplate="task %{x}<br>training accuracy %{y:.3f}<extra></extra>",
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            name="feature rank (share of task 0's)",
            mode="lines+markers",
            line=dict(color="#9467bd"),
            marker=dict(size=5),
            hovertemplate="task %{x}<br>feature rank %{customdata} (%{y:.2f} of task 0's)<extra></extra>",
        ),
        1,
        1,
    )
    for name, colour in ((f"unhealthy below {UNHEALTHY_ACCURACY:g}", "#2ca02c"), ("collapsed below", "#9467bd")):
        fig.add_trace(
            go.Scatter(
                name=name,
                mode="lines",
                line=dict(color=colour, dash="dash", width=1),
                hoverinfo="skip",
                showlegend=False,
            ),
            1,
            1,
        )
    fig.add_trace(
        go.Heatmap(
            colorscale="Reds",
            zmin=0,
            zmax=1,
            colorbar=dict(title=dict(text="dead", side="right"), thickness=10, len=0.9),
            hovertemplate="%{y} · task %{x}<br>%{z:.1%} of units dead<extra></extra>",
            name="dead units",
        ),
        1,
        2,
    )
    fig.update_layout(
        **base_layout(
            330,
            margin=dict(l=60, r=20, t=40, b=45),
            legend=dict(x=0.0, y=-0.18, xanchor="left", yanchor="top", orientation="h", font=dict(size=11)),
        )
    )
    fig.update_xaxes(title_text="source task", row=1, col=1)
    fig.update_xaxes(title_text="source task", row=1, col=2)
    fig.update_yaxes(title_text="share", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    return LiveFigure(fig)


def draw(fig: LiveFigure, rows: Sequence[dict], placeholder: str | None = None, in_place: bool = False) -> None:
    """Redraw from health rows (task order, as core.collective.health.health_rows gives them; `in_place` in the chart
    shown while training)."""
    rows = sorted(rows, key=lambda r: r["task"])
    if not rows:
        fig.placeholder(placeholder or NO_RUN)
        return
    tasks = [r["task"] for r in rows]
    start = max(rows[0]["feature_rank"], 1)
    layers = list(rows[0]["dead_fraction"])
    bad = unhealthy_tasks(rows)
    span = [tasks[0] - 0.5, tasks[-1] + 0.5]
    with fig.updating(in_place):
        fig.data[ACCURACY].update(x=tasks, y=[r["train_accuracy"] for r in rows])
        fig.data[RANK].update(
            x=tasks, y=[r["feature_rank"] / start for r in rows], customdata=[r["feature_rank"] for r in rows]
        )
        fig.data[ACCURACY_LIMIT].update(x=span, y=[UNHEALTHY_ACCURACY] * 2)
        fig.data[RANK_LIMIT].update(x=span, y=[COLLAPSED_RANK] * 2)
        fig.data[DEAD].update(x=tasks, y=layers, z=[[r["dead_fraction"].get(name) for r in rows] for name in layers])
        fig.layout.xaxis.update(range=span)
        fig.layout.xaxis2.update(range=span)
        fig.layout.shapes = [
            dict(
                type="rect",
                xref=axis,
                yref=f"{axis.replace('x', 'y')} domain",
                x0=t - 0.5,
                x1=t + 0.5,
                y0=0,
                y1=1,
                fillcolor=UNHEALTHY_FILL,
                line=dict(width=0),
                layer="below" if axis == "x" else "above",
            )
            for t, b in zip(tasks, bad)
            if b
            for axis in ("x", "x2")
        ]
    fig.placeholder(None)
