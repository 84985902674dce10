"""The criterion charts: the map (layers x tasks or epochs, the learngene frame, where growth ends, grey columns over
the tasks where the network was unhealthy) and, beside it row for row, the per-layer score bars."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from explorer.widgets.live_figure import LiveFigure
from explorer.widgets.style import base_layout

HEAT, OUTLINE = range(2)  # the map's traces
SCORES, THRESHOLD = range(2)  # the score chart's traces
MAX_HOVER_TEXT = 40_000
SELECTED_COLOUR, OTHER_COLOUR, INVALID_COLOUR = "#d62728", "#b0b0b0", "#ff9800"
UNHEALTHY_FILL = "rgba(120,120,120,0.72)"
GROWTH_COLOUR = "#ffffff"
TITLES = 1  # the chart's title is its first annotation
HEIGHT = 420
MARGIN = dict(t=40, b=50)  # both charts, so that their layer rows line up


def _title(text: str) -> dict:
    return dict(
        text=text, xref="paper", yref="paper", x=0.5, y=1.0, xanchor="center", yanchor="bottom", showarrow=False
    )


def new_figure() -> LiveFigure:
    """The map: layers x tasks (or epochs) with its colour bar and the frame around the selected layers."""
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            colorscale="Viridis",
            colorbar=dict(title=dict(text="fraction", side="right"), thickness=12, len=0.9, ticklabeloverflow="allow"),
            hoverongaps=False,
            name="criterion",
        )
    )
    fig.add_trace(
        go.Scatter(
            mode="lines", line=dict(color=SELECTED_COLOUR, width=3), name="selected", hoverinfo="skip", showlegend=False
        )
    )
    fig.update_layout(
        **base_layout(HEIGHT, margin=dict(l=70, r=10, **MARGIN)),
        annotations=[_title("Fraction of weight-gradient entries above τ")],
    )
    fig.update_yaxes(autorange="reversed", title_text="layer")
    fig.update_xaxes(title_text="source task")
    # every tick label fits inside the margins; "allow" spares plotly.js measuring each label on every redraw
    fig.update_xaxes(ticklabeloverflow="allow")
    fig.update_yaxes(ticklabeloverflow="allow")
    return LiveFigure(fig)


def new_scores_figure() -> LiveFigure:
    """Per-layer score bars with the threshold line, row for row beside the map (a chart of its own, so that a tau
    move redraws the map first and the bars after it: plotly.js redraws a whole chart on every change)."""
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            orientation="h", name="score", showlegend=False, textposition="none", hovertemplate="%{text}<extra></extra>"
        )
    )
    fig.add_trace(
        go.Scatter(
            mode="lines",
            line=dict(color="#333", dash="dash"),
            name="threshold",
            showlegend=False,
            hovertemplate="threshold %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        **base_layout(HEIGHT, margin=dict(l=10, r=20, **MARGIN), bargap=0.15), annotations=[_title("Layer score")]
    )
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(title_text="score (lower = more stable)", ticklabeloverflow="allow")
    return LiveFigure(fig)


def side_by_side(fig: LiveFigure, scores_fig: LiveFigure) -> widgets.HBox:
    """The map and its score chart in one row, at widths fixed beforehand (plotly sizes a chart to its container)."""
    for chart, width in ((fig, "76%"), (scores_fig, "24%")):
        chart.frame.layout.width = width
        chart.frame.layout.flex = "0 0 auto"
    return widgets.HBox([fig.frame, scores_fig.frame])


@dataclass(frozen=True, eq=False)
class MapState:
    """Everything one drawing of the map needs: the matrices at the slider's tau and the selection."""

    layer_names: tuple[str, ...]
    per_task: np.ndarray  # (T, L)
    per_epoch: np.ndarray  # (T, E, L)
    tau: float
    absolute: bool
    view: str
    scores: np.ndarray
    selected: tuple[str, ...]
    valid: bool
    threshold: float
    show_threshold: bool = False
    expansion_tasks: int = 0
    unhealthy: tuple[bool, ...] = ()
    colour_scale: str = "fit"
    criterion: str = "paper"

    @property
    def tasks(self) -> int:
        """Number of task columns."""
        return self.per_task.shape[0]


def columns(state: MapState) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(values (L, X), column centres, column labels) for the per-task or per-epoch view."""
    if state.view == "task":
        values = state.per_task
        return values.T, np.arange(values.shape[0], dtype=float), [f"task {t}" for t in range(values.shape[0])]
    per_epoch = state.per_epoch
    tasks, epochs = per_epoch.shape[:2]
    centres = np.array([t - 0.5 + (e + 0.5) / epochs for t in range(tasks) for e in range(epochs)])
    labels = [f"task {t}, epoch {e}" for t in range(tasks) for e in range(epochs)]
    return per_epoch.reshape(tasks * epochs, -1).T, centres, labels


def clear(fig: LiveFigure, scores_fig: LiveFigure) -> None:
    """An empty map and score chart (no run shown), each sent once."""
    with fig.updating():
        _empty(fig)
        fig.data[HEAT].update(z=[], text=None)
        fig.layout.shapes = ()
    with scores_fig.updating():
        _empty(scores_fig)


def _empty(chart: LiveFigure) -> None:
    """No points in any trace, and no annotation but the title."""
    for trace in chart.data:
        trace.update(x=[], y=[])
    chart.layout.annotations = chart.layout.annotations[:TITLES]


def colour_range(z: np.ndarray, scale: str) -> tuple[float, float]:
    """The colour axis: 0 to 1 when fixed, else 0 to the largest value (0 to 1 when every value is 0 or missing)."""
    finite = z[np.isfinite(z)]
    top = float(finite.max()) if finite.size else 0.0
    return (0.0, 1.0) if scale == "fixed" or top <= 0 else (0.0, top)


def draw(fig: LiveFigure, scores_fig: LiveFigure, state: MapState, in_place: bool = False) -> None:
    """Redraw the map with the frame around the selected layers, then the score bars and the threshold line (in place,
    the page paints the map before it redraws the bars)."""
    z, xs, labels = columns(state)
    names, tasks = state.layer_names, state.tasks
    z_list = [[float(v) if np.isfinite(v) else None for v in row] for row in z]
    transfer = state.criterion == "transfer"
    quantity = "open-world error" if transfer else "fraction"
    text = None
    if z.size <= MAX_HOVER_TEXT:
        text = [
            [f"{names[j]} · {labels[i]}<br>{quantity} {_fmt(z[j, i])}" for i in range(z.shape[1])]
            for j in range(z.shape[0])
        ]
    ys = list(range(len(names)))
    rows = dict(range=[len(names) - 0.5, -0.5], autorange=False)
    scores = state.scores if len(state.scores) == len(names) else np.full(len(names), np.nan)
    outline_x, outline_y = _outline(names, state.selected, -0.5, tasks - 0.5)
    colour = SELECTED_COLOUR if state.valid else INVALID_COLOUR
    zmin, zmax = colour_range(z, state.colour_scale)
    heat = dict(
        x=xs.tolist(),
        y=ys,
        z=z_list,
        zmin=zmin,
        zmax=zmax,
        zauto=False,
        text=text,
        hovertemplate="%{text}<extra></extra>"
        if text is not None
        else f"layer #%{{y}} · x %{{x:.2f}}<br>{quantity} %{{z:.4g}}<extra></extra>",
        colorbar=dict(title=dict(text="error" if transfer else "fraction")),
    )
    title = (
        "Open-world nearest-centroid error (1 − accuracy), per task"
        if transfer
        else f"Share of {'|g|' if state.absolute else 'g'} > τ = {state.tau:.2e}, per {state.view}"
    )
    shapes, notes = _marks(state, len(names))
    layout = dict(
        yaxis=dict(tickmode="array", tickvals=ys, ticktext=list(names), **rows),
        xaxis=dict(
            title=dict(text="source task" if state.view == "task" else "source task (one column per epoch)"),
            tickmode="linear" if tasks <= 30 else "auto",
            tick0=0,
            dtick=1,
            range=[-0.5, tasks - 0.5],
        ),
        shapes=shapes,
        annotations=[_title(title), *notes],
    )
    now = fig.patch(
        [heat, dict(x=outline_x, y=outline_y, line=dict(color=colour, width=3))], layout, in_place, send=False
    )
    finite = scores[np.isfinite(scores)]
    bars_max = max(float(finite.max()) if finite.size else 0.0, state.threshold if state.show_threshold else 0.0)
    threshold = ([state.threshold] * 2, [-0.5, len(names) - 0.5]) if state.show_threshold else ([], [])
    bars = dict(
        x=[float(s) if np.isfinite(s) else None for s in scores],
        y=ys,
        marker=dict(color=[colour if n in state.selected else OTHER_COLOUR for n in names]),
        text=[f"{n}: score {_fmt(s)}" for n, s in zip(names, scores)],
    )
    scores_layout = dict(
        xaxis=dict(
            range=[0, max(bars_max * 1.15, 1e-3)],
            title=dict(text=f"score (lower = {'transfers better' if transfer else 'more stable'})"),
        ),
        yaxis=dict(tickmode="array", tickvals=ys, **rows),
    )
    later = scores_fig.patch([bars, dict(x=threshold[0], y=threshold[1])], scores_layout, in_place, send=False)
    fig.run(now, later)  # one message: the page would handle a second one before it paints the map


def _marks(state: MapState, rows: int) -> tuple[list[dict], list[dict]]:
    """Grey columns over unhealthy tasks and a line where growth ends, with their labels (shapes, annotations)."""
    shapes: list[dict] = []
    notes: list[dict] = []
    for t, bad in enumerate(state.unhealthy[: state.tasks]):
        if bad:
            shapes.append(
                dict(
                    type="rect",
                    xref="x",
                    yref="y",
                    x0=t - 0.5,
                    x1=t + 0.5,
                    y0=-0.5,
                    y1=rows - 0.5,
                    fillcolor=UNHEALTHY_FILL,
                    line=dict(width=0),
                    layer="above",
                )
            )
    if any(state.unhealthy[: state.tasks]):
        notes.append(
            dict(
                text="grey: network unhealthy",
                xref="x domain",
                yref="y domain",
                x=1.0,
                y=-0.13,
                xanchor="right",
                showarrow=False,
                font=dict(size=11, color="#555"),
            )
        )
    if 0 < state.expansion_tasks < state.tasks:
        x = state.expansion_tasks - 0.5
        shapes.append(
            dict(
                type="line",
                xref="x",
                yref="y",
                x0=x,
                x1=x,
                y0=-0.5,
                y1=rows - 0.5,
                line=dict(color=GROWTH_COLOUR, width=3, dash="dot"),
                layer="above",
            )
        )
        notes.append(
            dict(
                text="growth ends",
                xref="x",
                yref="y domain",
                x=x,
                y=1.0,
                xanchor="left",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=11, color="#333"),
            )
        )
    return shapes, notes


def _fmt(value: float) -> str:
    return "not recorded" if not np.isfinite(value) else f"{value:.6g}"


def _outline(names: tuple[str, ...], selected: tuple[str, ...], x0: float, x1: float) -> tuple[list, list]:
    """A rectangle (as one line with gaps) around each run of consecutive selected rows."""
    rows = [i for i, n in enumerate(names) if n in selected]
    xs: list = []
    ys: list = []
    start = None
    for k, row in enumerate(rows + [None]):
        if start is None:
            start = row
        elif row is None or row != rows[k - 1] + 1:
            end = rows[k - 1]
            top, bottom = start - 0.5, end + 0.5
            xs += [x0, x1, x1, x0, x0, None]
            ys += [top, top, bottom, bottom, top, None]
            start = row
    return xs, ys
