"""Tutorial 02's figures of a run's health (train accuracy, feature rank, dead units) and of its open-world
detection, each built from the rows the run recorded (no training, no files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.collective.health import COLLAPSED_RANK, UNHEALTHY_ACCURACY


def spans(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """(first, last) of every stretch of consecutive True flags: the stretches of tasks to grey out."""
    out, start = [], None
    for t, flag in enumerate(list(flags) + [False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            out.append((start, t - 1))
            start = None
    return out


def health_figure(health: Mapping[str, Sequence[Mapping[str, Any]]], chance: float) -> go.Figure:
    """Tutorial 02: one column per run of train accuracy, feature rank and dead units per task, with the thresholds
    (dashed), chance (dotted) and the unhealthy tasks greyed out."""
    fig = make_subplots(
        rows=3,
        cols=2,
        shared_xaxes=True,
        vertical_spacing=0.07,
        horizontal_spacing=0.1,
        subplot_titles=[
            f"{label}: {what}" for what in ("train accuracy", "feature rank", "dead units") for label in health
        ],
    )
    for col, rows in enumerate(health.values(), start=1):
        x = [row["task"] for row in rows]
        accuracy = [row["train_accuracy"] for row in rows]
        fig.add_trace(go.Scatter(x=x, y=accuracy, mode="lines+markers", line_color="seagreen"), 1, col)
        fig.add_hline(y=UNHEALTHY_ACCURACY, line_dash="dash", row=1, col=col)
        fig.add_hline(y=chance, line_dash="dot", line_color="gray", row=1, col=col)
        rank = [row["feature_rank"] for row in rows]
        fig.add_trace(go.Scatter(x=x, y=rank, mode="lines+markers", line_color="royalblue"), 2, col)
        fig.add_hline(y=COLLAPSED_RANK * rows[0]["feature_rank"], line_dash="dash", row=2, col=col)
        dead_layers = list(rows[0]["dead_fraction"])
        fig.add_trace(
            go.Heatmap(
                z=[[row["dead_fraction"][n] for row in rows] for n in dead_layers],
                x=x,
                y=dead_layers,
                zmin=0,
                zmax=1,
                colorscale="Reds",
                showscale=col == 2,
                colorbar=dict(title="dead", len=0.3, y=0.15, thickness=12),
            ),
            3,
            col,
        )
        for first, last in spans([not row["healthy"] for row in rows]):
            for r in (1, 2):
                fig.add_vrect(
                    x0=first - 0.5, x1=last + 0.5, fillcolor="gray", opacity=0.2, line_width=0, row=r, col=col
                )
    fig.update_yaxes(range=[0, 1.05], row=1)
    fig.update_yaxes(rangemode="tozero", row=2)
    fig.update_yaxes(autorange="reversed", row=3)
    fig.update_xaxes(title_text="source task", row=3)
    fig.update_layout(height=640, showlegend=False, title="health after each source task")
    return fig


def framed_maps_figure(logs: Mapping[str, Any], unhealthy: Mapping[str, Sequence[bool]], tau: float) -> go.Figure:
    """Tutorial 02: each run's criterion map at its own tau (a label to the run's CriterionLog) on one colour scale, 0
    to 0.5, with a dotted frame over each stretch of tasks where that run was unhealthy; `tau` goes in the title."""
    fig = make_subplots(rows=1, cols=len(logs), subplot_titles=list(logs), shared_yaxes=True, horizontal_spacing=0.05)
    for col, (label, log) in enumerate(logs.items(), start=1):
        fig.add_trace(
            go.Heatmap(
                z=log.per_task().T,
                y=list(log.layer_names),
                colorscale="Viridis",
                zmin=0,
                zmax=0.5,
                showscale=col == len(logs),
                colorbar=dict(thickness=12),
            ),
            1,
            col,
        )
        for first, last in spans(unhealthy[label]):
            fig.add_vrect(
                x0=first - 0.5,
                x1=last + 0.5,
                line=dict(color="white", width=2, dash="dot"),
                annotation_text="unhealthy",
                annotation_position="top left",
                row=1,
                col=col,
            )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="source task")
    fig.update_layout(
        height=380, title=f"signed fraction > τ = {tau:g}; dotted frames: tasks where the network was unhealthy"
    )
    return fig


def rank_against_live_figure(health: Mapping[str, Sequence[Mapping[str, Any]]], widths: Mapping[str, int]) -> go.Figure:
    """Tutorial 02: one dot per task and run (a label to its health rows) of the feature rank against fc1's live
    units (its width in `widths`, by label, times the live share), with rank = live dotted: no dot can lie above it."""
    fig = go.Figure()
    for label, rows in health.items():
        fig.add_trace(
            go.Scatter(
                x=[(1 - row["dead_fraction"]["fc1"]) * widths[label] for row in rows],
                y=[row["feature_rank"] for row in rows],
                text=[f"task {row['task']}" for row in rows],
                mode="markers",
                name=label,
            )
        )
    width = max(widths.values())
    fig.add_trace(
        go.Scatter(x=[0, width], y=[0, width], mode="lines", line=dict(dash="dot", color="gray"), name="rank = live")
    )
    fig.update_layout(
        title="feature rank against live fc1 units, one dot per task",
        xaxis_title="live fc1 units",
        yaxis_title="feature rank",
        height=380,
    )
    return fig


def open_world_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Tutorial 02: at the start of each source task (the run's per-task metric rows), how well two unfamiliarity
    scores tell that task's new classes from the classes seen before (AUROC), with chance, 0.5, dotted."""
    tasks = [r["task"] for r in rows]
    fig = go.Figure(
        [
            go.Scatter(
                x=tasks, y=[r.get("auroc_msp") for r in rows], mode="lines+markers", name="1 - max softmax prob."
            ),
            go.Scatter(x=tasks, y=[r.get("auroc_energy") for r in rows], mode="lines+markers", name="energy"),
        ]
    )
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance (a coin toss)")
    fig.update_layout(height=320, xaxis_title="source task", yaxis_title="AUROC (unknown vs seen)", yaxis_range=[0, 1])
    return fig
