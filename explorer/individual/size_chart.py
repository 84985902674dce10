"""The individual panel's chart: few-shot accuracy against model size, one curve per strategy (and one per twin:
scratch of exactly a strategy's architecture, in its colour), and below it each strategy minus scratch of the same
shape (in the sweep, its twin), paired over the same target tasks, with its 95% interval.

The x axis (parameters, log scale) is shared. Chance (1/way) is a dotted line; the collective model fine-tuned is
a labelled reference point. Every trace carries `meta` ("accuracy", "difference", "chance", "reference") so that
tests and exports can tell them apart.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.individual.twins import TWIN_PHRASE, is_twin, twin_strategy
from explorer.individual.results import ResultStore, Series, is_sweep_size, strategy
from explorer.widgets.live_figure import LiveFigure
from explorer.widgets.style import base_layout, method_colour

TITLE = "Few-shot accuracy against model size"
PLACEHOLDER = (
    "Press <b>Run</b> (learngene against scratch on the target tasks) or <b>Size sweep</b> (every strategy at 1/8 to "
    "1 of the collective model's width): each point appears here as its target tasks finish."
)
REFERENCE_NAME = "collective model, fine-tuned"
DASHES = ("solid", "dash", "dot", "dashdot")
SPREAD = 0.03  # relative x offset between points of equal size


def new_figure() -> LiveFigure:
    """Two rows over one log-scale parameter axis: accuracy (top), minus scratch (bottom)."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.62, 0.38],
        vertical_spacing=0.12,
    )
    fig.update_layout(
        **base_layout(
            560,
            width=660,
            title=dict(text=TITLE, x=0.01, y=0.98),
            legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0, font=dict(size=11)),
            margin=dict(l=60, r=20, t=45, b=120),
        )
    )
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log", title_text="parameters of the model (log scale)", row=2, col=1)
    fig.update_yaxes(title_text="mean test accuracy (95% CI)", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="minus scratch (points)<br>0 = as good as scratch", zeroline=False, row=2, col=1)
    return LiveFigure(fig)


def curve_name(series: Series) -> str:
    """The curve a series belongs to: its strategy (a twin is a curve of its own)."""
    name = strategy(series.method)
    if name == "collective":
        return REFERENCE_NAME
    return name


def curves(store: ResultStore) -> dict[str, list[Series]]:
    """Series per curve, smallest model first; points of equal size (a sweep point equal to a table row) shown once."""
    setups = store.setups()
    grouped: dict[str, dict[int, Series]] = {}
    for s in store.series.values():  # first appearance fixes a curve's place in the legend
        name = curve_name(s) if len(setups) == 1 else f"{curve_name(s)} ({s.setup})"
        points = grouped.setdefault(name, {})
        kept = points.get(s.params)
        if kept is None or (is_sweep_size(s.size) and not is_sweep_size(kept.size)):
            points[s.params] = s
    return {name: [points[p] for p in sorted(points)] for name, points in grouped.items()}


def _symbols(series: list[Series], shape: str) -> list[str]:
    return [shape if s.status == "done" else (f"{shape}-open" if s.status == "running" else "x") for s in series]


def draw(fig: LiveFigure, store: ResultStore) -> None:
    """Redraw every curve, its paired difference to scratch, the chance lines and the reference point."""
    groups = curves(store)
    if not groups:
        with fig.updating():
            fig.data = ()
        fig.placeholder(PLACEHOLDER)
        return
    setups = store.setups()
    params = [s.params for group in groups.values() for s in group]
    shift = _offsets(groups)
    span = [min(params) / 1.6, max(params) * 1.6]
    traces = []
    colours = {(s[0].method, s[0].setup): method_colour(s[0].method, i) for i, s in enumerate(groups.values())}
    for name, series in groups.items():
        rows = [s.row(store.reference(s)) for s in series]
        method = series[0].method
        twin = is_twin(method)
        own = (method, series[0].setup)
        colour = colours.get((twin_strategy(method), series[0].setup), colours[own]) if twin else colours[own]
        reference = name.startswith(REFERENCE_NAME)
        shape = "star" if reference else "square" if twin else "circle"
        dash = DASHES[setups.index(series[0].setup) % len(DASHES)]
        custom = [
            [r["size"], r["tasks"], r["planned"], r["status"], r["ci95"] or 0, r["model"], r["params"]] for r in rows
        ]
        traces.append(
            go.Scatter(
                name=name,
                legendgroup=name,
                meta="reference" if reference else "accuracy",
                x=[r["params"] * shift[name, r["params"]] for r in rows],
                y=[r["mean_accuracy"] for r in rows],
                error_y=dict(type="data", array=[r["ci95"] or 0 for r in rows], visible=True, thickness=1.2, width=4),
                mode=("markers+text" if reference else "lines+markers" if len(rows) > 1 else "markers"),
                text=[REFERENCE_NAME] * len(rows) if reference else None,
                textposition="top left",
                marker=dict(symbol=_symbols(series, shape), size=14 if reference else 10, color=colour),
                line=dict(color=colour, dash=dash),
                customdata=custom,
                hovertemplate=(
                    "<b>%{customdata[5]}</b><br>size %{customdata[0]}, %{customdata[6]:,} parameters<br>"
                    "accuracy %{y:.3f} ± %{customdata[4]:.3f}<br>%{customdata[1]} of %{customdata[2]} tasks "
                    "(%{customdata[3]})<extra></extra>"
                ),
                xaxis="x",
                yaxis="y",
            )
        )
        paired = [(r, s) for r, s in zip(rows, series) if r["vs_scratch"] is not None]
        if paired:
            diffs = [r["vs_scratch"] for r, _ in paired]
            traces.append(
                go.Scatter(
                    name=f"{name} minus scratch",
                    legendgroup=name,
                    showlegend=False,
                    meta="difference",
                    x=[r["params"] * shift[name, r["params"]] for r, _ in paired],
                    y=[100 * d["mean"] for d in diffs],
                    error_y=dict(
                        type="data", array=[100 * (d["ci95"] or 0) for d in diffs], visible=True, thickness=1.2, width=4
                    ),
                    mode="markers" if reference or len(paired) == 1 else "lines+markers",
                    marker=dict(
                        symbol=_symbols([s for _, s in paired], shape), size=12 if reference else 9, color=colour
                    ),
                    line=dict(color=colour, dash=dash),
                    customdata=[
                        [r["model"], d["tasks"], _p(d["p_value"]), 100 * (d["ci95"] or 0)]
                        for (r, _), d in zip(paired, diffs)
                    ],
                    hovertemplate=(
                        "<b>%{customdata[0]}</b><br>minus scratch: %{y:+.1f} ± %{customdata[3]:.1f} points<br>"
                        "over %{customdata[1]} paired tasks, p %{customdata[2]}<extra></extra>"
                    ),
                    xaxis="x2",
                    yaxis="y2",
                )
            )
    for way in sorted({s.way for s in store.series.values() if s.way}):
        traces.append(
            go.Scatter(
                name=f"chance (1/{way})",
                meta="chance",
                x=span,
                y=[1 / way] * 2,
                mode="lines",
                line=dict(color="#888", dash="dot", width=1.5),
                hovertemplate=f"chance for {way}-way tasks: {1 / way:.3f}<extra></extra>",
                xaxis="x",
                yaxis="y",
            )
        )
    with fig.updating():
        fig.data = ()
        fig.add_traces(traces)
        fig.layout.shapes = [
            dict(
                type="line",
                xref="x2 domain",
                yref="y2",
                x0=0,
                x1=1,
                y0=0,
                y1=0,
                line=dict(color="#1f77b4", width=1.5, dash="dash"),
            )
        ]
        fig.layout.annotations = (
            dict(
                text=f"minus scratch, paired over the same tasks (95% CI); size sweep: {TWIN_PHRASE}",
                xref="x2 domain",
                yref="y2 domain",
                x=0,
                y=1.0,
                xanchor="left",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=11, color="#333"),
            ),
        )
    fig.placeholder(None)


def _offsets(groups: dict[str, list[Series]]) -> dict[tuple[str, int], float]:
    """A small factor per (curve, parameter count), so that points of equal size (learngene and scratch of a Run)
    sit side by side instead of hiding each other; the hover text gives the exact count."""
    sharing: dict[int, list[str]] = {}
    for name, series in groups.items():
        for s in series:
            sharing.setdefault(s.params, []).append(name)
    return {
        (name, params): 1 + SPREAD * (i - (len(names) - 1) / 2)
        for params, names in sharing.items()
        for i, name in enumerate(names)
    }


def _p(value: float | None) -> str:
    return "not defined (1 task)" if value is None else f"{value:.3g}"
