"""Tutorial 02's longer plotly figures (the gradient criterion, its maps and the health of a run), each built from
what the notebook computed (no training, no files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.collective.health import COLLAPSED_RANK, UNHEALTHY_ACCURACY


def gradient_histograms_figure(grads: Mapping[str, np.ndarray], tau: float) -> go.Figure:
    """Tutorial 02: one batch's gradient entries of each layer (a name to its flat gradient) as histograms of log10
    magnitude, positive and negative apart, with τ dashed: the criterion is the positive share right of the line."""
    fig = make_subplots(rows=1, cols=len(grads), subplot_titles=list(grads), shared_yaxes=True)
    for col, g in enumerate(grads.values(), start=1):
        for sign, colour, label in ((1, "seagreen", "positive"), (-1, "indianred", "negative")):
            part = g[sign * g > 0]
            fig.add_trace(
                go.Histogram(
                    x=np.log10(sign * part),
                    nbinsx=60,
                    marker_color=colour,
                    opacity=0.6,
                    name=label,
                    histnorm="probability",
                    showlegend=col == 1,
                ),
                1,
                col,
            )
        fig.add_vline(x=np.log10(tau), line_dash="dash", row=1, col=col)
    fig.update_layout(barmode="overlay", height=330, title=f"gradient entries of one batch; dashed line: τ = {tau:g}")
    fig.update_xaxes(title_text="log10 |gradient entry|")
    return fig


def per_epoch_figure(per_epoch: np.ndarray, layer_names: Sequence[str], tau: float, expansion_tasks: int) -> go.Figure:
    """Tutorial 02: every layer's criterion r(l, t, e) epoch by epoch over the whole stream (a (tasks, epochs, layers)
    array, epochs drawn as fractions of a task), the growth phase shaded."""
    tasks, epochs, _ = per_epoch.shape
    x = np.arange(tasks * epochs) / epochs
    fig = go.Figure(
        [
            go.Scatter(x=x, y=per_epoch[:, :, j].reshape(-1), mode="lines", name=name)
            for j, name in enumerate(layer_names)
        ]
    )
    fig.add_vrect(
        x0=0,
        x1=expansion_tasks,
        fillcolor="orange",
        opacity=0.1,
        line_width=0,
        annotation_text="growth phase",
        annotation_position="top left",
    )
    fig.update_layout(
        title=f"r(l, t, e): share of gradient entries > τ = {tau:g}, epoch by epoch",
        xaxis_title="source task (epochs as fractions)",
        yaxis_title="fraction",
        height=380,
    )
    return fig


def signed_absolute_figure(signed: np.ndarray, absolute: np.ndarray, layer_names: Sequence[str]) -> go.Figure:
    """Tutorial 02: the signed (g > τ, 0-0.5 scale) and absolute (|g| > τ, 0-1 scale) criterion maps side by side,
    layers x source tasks from (tasks, layers) matrices, so that a sign bias shows where they disagree."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("signed: g > τ", "absolute: |g| > τ"),
        shared_yaxes=True,
        horizontal_spacing=0.14,
    )
    for col, matrix in enumerate((signed, absolute), start=1):
        fig.add_trace(
            go.Heatmap(
                z=matrix.T,
                y=list(layer_names),
                colorscale="Viridis",
                zmin=0,
                zmax=1 if col == 2 else 0.5,
                colorbar=dict(x=0.43 if col == 1 else 1.0, len=0.9, thickness=12),
            ),
            1,
            col,
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="source task")
    fig.update_layout(height=360)
    return fig


def tau_map_figure(log: Any, tau: float) -> go.Figure:
    """Tutorial 02: a run's criterion map (layers x source tasks, its CriterionLog) at `tau` on a 0-0.5 scale."""
    return go.Figure(
        go.Heatmap(z=log.per_task(tau).T, y=list(log.layer_names), colorscale="Viridis", zmin=0, zmax=0.5),
        layout=dict(
            height=330,
            yaxis=dict(autorange="reversed"),
            xaxis_title="source task",
            title=f"signed fraction > τ = {tau:.1e}",
        ),
    )


def tau_sweep_figure(
    taus: np.ndarray, curves: np.ndarray, picked: Sequence[str], layer_names: Sequence[str], run_tau: float
) -> go.Figure:
    """Tutorial 02: each layer's mean signed fraction against τ (`curves`: taus x layers) above, the learngene each τ
    selects below, the run's τ dashed: where the curves cross, the learngene changes with τ."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.06)
    for j, name in enumerate(layer_names):
        fig.add_trace(go.Scatter(x=taus, y=curves[:, j], mode="lines", name=name), 1, 1)
    fig.add_trace(
        go.Scatter(x=taus, y=list(picked), mode="markers", marker=dict(color="crimson"), name="learngene"), 2, 1
    )
    fig.add_vline(x=run_tau, line_dash="dash")
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="τ (dashed: the run's)", row=2, col=1)
    fig.update_yaxes(title_text="mean fraction > τ", row=1, col=1)
    fig.update_yaxes(title_text="chosen", row=2, col=1)
    fig.update_layout(height=520, title="signed fraction against τ, and the learngene each τ selects")
    return fig


def display_item(figure: go.Figure) -> dict:
    """A figure as one item of an ipywidgets Output's `outputs`, so that a callback can replace what it shows.

    `Output.append_display_data(figure)` cannot be used for this: a plotly figure displays itself (IPython's
    `_ipython_display_`), which leaves the Output an empty item and shows the figure wherever the kernel's output goes.
    """
    return {"output_type": "display_data", "data": figure._repr_mimebundle_(), "metadata": {}}


def signals_maps_figure(
    grad_norm: np.ndarray,
    layer_names: Sequence[str],
    change: np.ndarray,
    conv_names: Sequence[str],
    inflated: Sequence[tuple[int, str]],
) -> go.Figure:
    """Tutorial 02: the gradient norm (tasks x `layer_names`) beside the relative weight change (tasks x `conv_names`)
    as layers x tasks maps, with an × on each (task, layer) cell that a widening inflated."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("gradient norm (mean per epoch)", "relative weight change during the task"),
        horizontal_spacing=0.16,
    )
    fig.add_trace(
        go.Heatmap(z=grad_norm.T, y=list(layer_names), colorscale="Magma", colorbar=dict(x=0.42, thickness=12)), 1, 1
    )
    fig.add_trace(
        go.Heatmap(z=change.T, y=list(conv_names), colorscale="Magma", colorbar=dict(x=1.0, thickness=12)), 1, 2
    )
    fig.add_trace(
        go.Scatter(
            x=[t for t, _ in inflated],
            y=[n for _, n in inflated],
            mode="markers",
            showlegend=False,
            marker=dict(symbol="x", size=11, color="cyan"),
        ),
        1,
        2,
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="source task")
    fig.update_layout(height=380)
    return fig


def maps_figure(maps: Mapping[str, np.ndarray], layer_names: Sequence[str], expansion_tasks: int) -> go.Figure:
    """Tutorial 02: criteria side by side as layers x tasks heatmaps, each with its own colour bar (their scales
    differ), and a dotted line where growth ends. `maps` maps a title to a (tasks, layers) matrix."""
    fig = make_subplots(rows=1, cols=len(maps), shared_yaxes=True, horizontal_spacing=0.12, subplot_titles=list(maps))
    for col, matrix in enumerate(maps.values(), start=1):
        tasks = matrix.shape[0]
        right = fig.get_subplot(1, col).xaxis.domain[1]
        fig.add_trace(
            go.Heatmap(
                z=matrix.T,
                x=list(range(tasks)),
                y=list(layer_names),
                colorscale="Viridis",
                colorbar=dict(x=right + 0.01, xanchor="left", len=0.9, thickness=10),
            ),
            1,
            col,
        )
        if 0 < expansion_tasks < tasks:
            fig.add_vline(x=expansion_tasks - 0.5, line_dash="dot", line_color="white", row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="source task")
    fig.update_layout(height=360, title="two criteria on the same run, lower = better for both (dotted: growth ends)")
    return fig


def criteria_figure(scores: Mapping[str, Any], picks: Mapping[str, Any], thresholds: Mapping[str, Any]) -> go.Figure:
    """Tutorials 02 and 03: one row per criterion, every conv layer's score (lower = better) as a bar, red where the
    criterion's learngene takes the layer, dashed at the criterion's threshold when one is set. `scores` and `picks`
    map a criterion to its LayerScores and its Selection."""
    fig = make_subplots(
        rows=len(scores),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.14,
        subplot_titles=[
            f"{c}: {picks[c].label}"
            + (f" (threshold {thresholds[c]:.3g})" if thresholds.get(c) is not None else " (best window)")
            for c in scores
        ],
    )
    for row, (criterion, layer_scores) in enumerate(scores.items(), start=1):
        convs = [n for n in layer_scores.layer_names if n.startswith("conv")]
        values = [layer_scores.of(n)[0] for n in convs]
        fig.add_trace(
            go.Bar(
                x=convs,
                y=values,
                text=[f"{v:.3g}" for v in values],
                textposition="outside",
                marker_color=["crimson" if n in picks[criterion].layers else "lightgray" for n in convs],
            ),
            row,
            1,
        )
        if thresholds.get(criterion) is not None:
            fig.add_hline(y=thresholds[criterion], line_dash="dash", line_width=1, row=row, col=1)
        top = np.nanmax(values + [thresholds.get(criterion) or 0])
        fig.update_yaxes(title_text="score", range=[0, 1.25 * top if top > 0 else 1], row=row, col=1)
    fig.update_layout(
        title="the layers each criterion picks (red); lower score = better under both",
        showlegend=False,
        height=180 + 170 * len(scores),
    )
    return fig


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
