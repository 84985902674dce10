"""The tutorials' longer plotly figures, each built from what the notebook computed (no training, no files); tutorial
02's are in lessons.criterion_figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

STRATEGIES = {"learngene": "crimson", "front inheritance": "darkorange", "weight selection": "seagreen"}


def stream_figure(metrics: Sequence[Mapping[str, Any]], epochs: int, expansion_tasks: int) -> go.Figure:
    """Tutorial 01: a run's training accuracy epoch by epoch (growth phase shaded) above its conv widths per task."""
    epoch_rows = [m for m in metrics if m["kind"] == "epoch"]
    task_rows = [m for m in metrics if m["kind"] == "task"]
    conv_names = list(task_rows[0]["widths"])
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.14,
        row_heights=[0.45, 0.55],
        subplot_titles=("training accuracy, epoch by epoch", "channels of each conv layer after each task"),
    )
    fig.add_trace(
        go.Scatter(
            x=[m["task"] + (m["epoch"] + 1) / epochs for m in epoch_rows],
            y=[m["accuracy"] for m in epoch_rows],
            mode="lines",
            name="accuracy",
        ),
        1,
        1,
    )
    fig.add_vrect(
        x0=0,
        x1=expansion_tasks,
        fillcolor="orange",
        opacity=0.12,
        line_width=0,
        row=1,
        col=1,
        annotation_text="growth phase",
        annotation_position="top left",
    )
    widths = np.array([[t["widths"][n] for t in task_rows] for n in conv_names])
    fig.add_trace(
        go.Heatmap(
            z=widths,
            x=[t["task"] for t in task_rows],
            y=conv_names,
            text=widths,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        ),
        2,
        1,
    )
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="source task", row=2, col=1)
    fig.update_layout(height=560, showlegend=False, margin=dict(t=50, b=40))
    return fig


def criterion_map_figure(
    per_task: np.ndarray, layer_names: Sequence[str], tau: float, expansion_tasks: int, title: str | None = None
) -> go.Figure:
    """Tutorials 01 and 04: the criterion heatmap, layers x source tasks from a (tasks, layers) matrix, with a dashed
    line where growth ends (the paper reads the columns after it); `title` replaces the one that states τ."""
    fig = go.Figure(
        go.Heatmap(
            z=per_task.T,
            x=list(range(per_task.shape[0])),
            y=list(layer_names),
            colorscale="Viridis",
            colorbar=dict(title="fraction"),
        )
    )
    fig.add_vline(
        x=expansion_tasks - 0.5,
        line_dash="dash",
        line_color="white",
        annotation_text="growth ends",
        annotation_font_color="white",
    )
    fig.update_yaxes(autorange="reversed", title="layer")
    fig.update_layout(
        title=title or f"share of weight-gradient entries > τ = {tau:g}", xaxis_title="source task", height=380
    )
    return fig


def layer_scores_figure(scores: Any, convs: Sequence[str], learngene: Sequence[str]) -> go.Figure:
    """Tutorial 01: each conv layer's post-growth score (bar: mean, whisker: spread; `scores` is a LayerScores) with
    the layers of the learngene in red, so the window the rule picks stands out."""
    fig = go.Figure(
        go.Bar(
            x=list(convs),
            y=[scores.of(n)[0] for n in convs],
            error_y=dict(array=[scores.of(n)[1] for n in convs]),
            marker_color=["crimson" if n in learngene else "lightgray" for n in convs],
        )
    )
    fig.update_layout(
        title="layer score after the growth phase (bars: mean, whiskers: spread); red: the learngene",
        yaxis_title="mean fraction > τ",
        height=340,
    )
    return fig


def parameters_figure(parts: Mapping[str, int], collective: int) -> go.Figure:
    """Tutorial 01: the individual model's parameters stacked by part (a name to its count) beside the collective
    model's, to see how small the inherited block and the new parts are."""
    fig = go.Figure(
        [go.Bar(name=name, x=["individual model"], y=[count]) for name, count in parts.items()]
        + [go.Bar(name="collective model", x=["collective model"], y=[collective])]
    )
    fig.update_layout(barmode="stack", title="parameters", yaxis_title="parameters", height=340)
    return fig


def parameters_by_width_figure(
    parts: Mapping[str, Sequence[int]], labels: Sequence[str], collective: int, title: str
) -> go.Figure:
    """Tutorial 03: the parameters of individual models of several widths (one bar per label, each part's count per
    width stacked), against the collective model's count dashed."""
    fig = go.Figure([go.Bar(name=name, x=list(labels), y=list(counts)) for name, counts in parts.items()])
    fig.add_hline(y=collective, line_dash="dash", annotation_text=f"collective model ({collective:,})")
    fig.update_layout(barmode="stack", title=title, yaxis_title="parameters", height=380)
    return fig


def accuracy_bars(rows: Sequence[Mapping[str, Any]], per_task: Mapping[str, Sequence[float]], title: str) -> go.Figure:
    """Tutorials 01 and 04: each method's mean accuracy (bar, 95% CI whisker) with one dot per target task."""
    fig = go.Figure()
    for row in rows:
        fig.add_trace(
            go.Bar(
                x=[row["method"]],
                y=[row["mean_accuracy"]],
                error_y=dict(array=[row["ci95"] or 0]),
                name=row["method"],
                opacity=0.6,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[row["method"]] * len(per_task[row["method"]]),
                y=per_task[row["method"]],
                mode="markers",
                marker=dict(color="black", size=7),
                showlegend=False,
            )
        )
    fig.update_layout(title=title, yaxis=dict(title="query accuracy", range=[0, 1.05]), showlegend=False, height=360)
    return fig


def _ci(value: float) -> float:
    return value if value == value else 0  # a NaN interval (one task) draws no whisker


def methods_figure(rows: Sequence[Mapping[str, Any]], title: str) -> go.Figure:
    """Tutorial 03: every method's accuracy (bar, 95% CI, dots: tasks) beside its difference to scratch, paired by
    task; the learngene in red, scratch in grey."""
    methods = [r["method"] for r in rows]
    colours = ["crimson" if m == "learngene" else "gray" if m == "scratch" else "steelblue" for m in methods]
    paired = [r.get("vs_scratch") or {"mean": 0.0, "ci95": 0.0} for r in rows]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.03,
        subplot_titles=("query accuracy (bar: mean, whisker: 95% CI, dots: tasks)", "minus scratch, paired by task"),
    )
    fig.add_trace(
        go.Bar(
            y=methods,
            x=[r["mean_accuracy"] for r in rows],
            orientation="h",
            error_x=dict(array=[r["ci95"] or 0 for r in rows]),
            text=[f"{r['params']:,} params" for r in rows],
            textposition="inside",
            insidetextanchor="start",
            marker_color=colours,
            opacity=0.8,
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            y=[r["method"] for r in rows for _ in r["task_accuracies"]],
            x=[a for r in rows for a in r["task_accuracies"]],
            mode="markers",
            marker=dict(color="black", size=5),
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Bar(
            y=methods,
            x=[p["mean"] for p in paired],
            orientation="h",
            error_x=dict(array=[_ci(p["ci95"]) for p in paired]),
            marker_color=colours,
        ),
        1,
        2,
    )
    fig.add_vline(x=0, line_color="black", row=1, col=2)
    fig.update_xaxes(range=[0, 1.05], row=1, col=1)
    fig.update_layout(title=title, showlegend=False, height=440, margin=dict(l=190))
    return fig


def size_figure(points: Sequence[Mapping[str, Any]], way: int) -> go.Figure:
    """Tutorial 03: accuracy against parameters for each strategy (solid) and its scratch twin (dashed), with the
    fine-tuned collective model as a star and chance dotted."""
    fig = go.Figure()
    for method, colour in STRATEGIES.items():
        for name, dash in ((method, "solid"), (f"scratch ({method})", "dash")):  # the strategy, then its twin
            mine = sorted((p for p in points if p["method"] == name), key=lambda p: p["params"])
            if not mine:  # no front inheritance when the learngene itself starts at conv1
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p["params"] for p in mine],
                    y=[p["mean_accuracy"] for p in mine],
                    error_y=dict(array=[p["ci95"] or 0 for p in mine], thickness=1),
                    text=[p["size"] for p in mine],
                    hovertemplate="%{text}: %{x:,} parameters, accuracy %{y:.3f}",
                    mode="lines+markers",
                    name=name,
                    line=dict(color=colour, dash=dash),
                )
            )
    reference = next(p for p in points if p["method"] == "collective-finetune")
    fig.add_trace(
        go.Scatter(
            x=[reference["params"]],
            y=[reference["mean_accuracy"]],
            error_y=dict(array=[reference["ci95"] or 0], thickness=1),
            mode="markers",
            marker=dict(size=14, color="black", symbol="star"),
            name="collective-finetune",
        )
    )
    fig.add_hline(y=1 / way, line_dash="dot", annotation_text="chance")
    fig.update_layout(
        title="accuracy against parameters, widths x1/8 to x1 (95% CI); every point is compared with scratch of its "
        "own architecture (dashed)",
        xaxis=dict(title="parameters", type="log"),
        yaxis=dict(title="query accuracy", range=[0, 1.05]),
        height=440,
    )
    return fig


def shots_figure(by_shot: Mapping[int, Mapping[str, Mapping[str, Any]]], query: int, tasks: int) -> go.Figure:
    """Tutorial 03: learngene and scratch accuracy against the number of shots (left) and the paired gain (right);
    `by_shot` maps a shot count to its rows by method."""
    shots = list(by_shot)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "learngene minus scratch (paired by task)"))
    for method, colour in (("learngene", "crimson"), ("scratch", "gray")):
        fig.add_trace(
            go.Scatter(
                x=shots,
                y=[by_shot[s][method]["mean_accuracy"] for s in shots],
                error_y=dict(array=[by_shot[s][method]["ci95"] or 0 for s in shots]),
                name=method,
                mode="lines+markers",
                line_color=colour,
            ),
            1,
            1,
        )
    gaps = [by_shot[s]["learngene"]["vs_scratch"] for s in shots]
    fig.add_trace(
        go.Bar(
            x=shots,
            y=[g["mean"] for g in gaps],
            error_y=dict(array=[_ci(g["ci95"]) for g in gaps]),
            marker_color="crimson",
            showlegend=False,
        ),
        1,
        2,
    )
    fig.add_hline(y=0, line_color="black", row=1, col=2)
    fig.update_xaxes(title_text="shots (training images per class)", type="category")
    fig.update_yaxes(title_text="query accuracy", row=1, col=1)
    fig.update_layout(height=380, title=f"5-way tasks, {query} query images per class, {tasks} tasks per point")
    return fig


def or_na(value: float, form: str) -> str:
    """`value` formatted, or "n/a" for NaN (a correlation over too few windows, or with one side constant)."""
    return format(value, form) if value == value else "n/a"


def window_figure(study: Mapping[str, Any], criteria: Sequence[str], learngene: str, way: int) -> go.Figure:
    """Tutorial 03: every window's accuracy against its score under each criterion, one panel per criterion titled
    with its Spearman ρ; red is the learngene `learngene`, dotted is chance at `way` classes."""

    rows, rho = study["rows"], study["correlation"]
    fig = make_subplots(
        rows=1,
        cols=len(criteria),
        shared_yaxes=True,
        horizontal_spacing=0.05,
        subplot_titles=[
            f"{c}: ρ = {or_na(rho[c]['spearman'], '+.2f')} (p = {or_na(rho[c]['p_value'], '.2f')})" for c in criteria
        ],
    )
    for col, criterion in enumerate(criteria, start=1):
        scores = [r["scores"][criterion] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=scores,
                y=[r["mean_accuracy"] for r in rows],
                error_y=dict(array=[r["ci95"] or 0 for r in rows], thickness=1),
                text=[r["method"] for r in rows],
                mode="markers+text",
                textposition="top center",
                textfont=dict(size=9),
                marker=dict(size=11, color=["crimson" if r["method"] == learngene else "steelblue" for r in rows]),
            ),
            1,
            col,
        )
        fig.add_hline(y=1 / way, line_dash="dot", row=1, col=col)
        pad = 0.15 * (max(scores) - min(scores)) or 0.01  # room for the labels
        fig.update_xaxes(range=[min(scores) - pad, max(scores) + pad], row=1, col=col)
    fig.update_xaxes(title_text="window score (lower = better)")
    fig.update_yaxes(range=[0, 1.05])
    fig.update_yaxes(title_text="query accuracy", row=1, col=1)
    fig.update_layout(
        title=f"accuracy of every window of {study['k']} layers against its score under each criterion (Spearman ρ)",
        showlegend=False,
        height=400,
    )
    return fig
