"""Tutorial 02's longer plotly figures (the gradient criterion, its maps and the health of a run), each built from
what the notebook computed (no training, no files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


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


def score_scatter_figure(scores: Any, names: Sequence[str], learngene: Sequence[str], label: str) -> go.Figure:
    """Tutorial 02: each candidate layer as a point, its post-growth mean against its spread (`scores` is a
    LayerScores), the learngene's layers in red: the rule looks for low and steady, the lower left."""
    fig = go.Figure(
        go.Scatter(
            x=[scores.of(n)[0] for n in names],
            y=[scores.of(n)[1] for n in names],
            text=list(names),
            mode="markers+text",
            textposition="top center",
            marker=dict(size=12, color=["crimson" if n in learngene else "gray" for n in names]),
        )
    )
    fig.update_layout(
        title=f"each candidate layer after the growth phase; red: the learngene {label}",
        xaxis_title="score: mean fraction (lower = quieter)",
        yaxis_title="spread: std over tasks (lower = steadier)",
        height=380,
    )
    return fig


def signal_bars_figure(signals: Mapping[str, Any], names: Sequence[str], picks: Mapping[str, str]) -> go.Figure:
    """Tutorial 02: each signal's post-growth score of every candidate layer (a label to its LayerScores), divided by
    its largest so that they share an axis, with the block each signal picks (a label to the block's name) in the
    legend."""
    fig = go.Figure()
    for label, s in signals.items():
        values = np.array([s.of(n)[0] for n in names])
        fig.add_trace(go.Bar(x=list(names), y=values / np.nanmax(values), name=f"{label} → {picks[label]}"))
    fig.update_layout(
        title="post-growth score of each candidate layer, divided by its largest (legend: the block each picks)",
        yaxis_title="relative score (lower = quieter)",
        height=380,
        barmode="group",
    )
    return fig
