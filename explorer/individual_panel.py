"""Individual-model panel: few-shot target tasks for the learngene and the baselines, drawn as they finish."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go

from core.collective.runs import Run
from core.data.datasets import resolve_root
from core.events import MethodFinished, TargetTaskFinished
from core.learngene.selection import block_label
from explorer import engine
from explorer.fields import Check, Choice, IntField, Toggles, report_to
from explorer.figure import LiveFigure
from explorer.results import ResultStore
from explorer.settings import Settings
from explorer.style import base_layout, heading, message_html, method_colour
from explorer.worker import Outcome, Throttle, Worker, one_line

Context = Callable[[], tuple[Run, tuple[str, ...]]]
NOVEL = "novel classes of the run"
TABLE_STYLE = (
    "<style>.lg-results{border-collapse:collapse;font-size:11px}"
    ".lg-results th,.lg-results td{text-align:left;padding:1px 8px;white-space:nowrap;line-height:1.4}"
    ".lg-results thead tr{border-bottom:1px solid #999}.lg-results td.setup{padding-top:6px;font-style:italic}</style>"
)


def new_figure() -> LiveFigure:
    """Accuracy against model size: log-scale parameters on x, mean accuracy with 95% CI on y."""
    layout = base_layout(
        470,
        width=660,
        title=dict(text="Few-shot accuracy against model size", x=0.01, y=0.97),
        xaxis=dict(type="log", title="parameters of the model (log scale)"),
        yaxis=dict(title="mean test accuracy (95% CI)", range=[0, 1.02]),
        legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0, font=dict(size=11)),
        margin=dict(l=60, r=20, t=45, b=130),
    )
    return LiveFigure(layout=layout)


def draw(fig: LiveFigure, store: ResultStore) -> None:
    """One trace per method, updated in place; running points are hollow circles, cancelled or failed ones crosses."""
    groups = store.traces()
    with fig.updating():
        if [t.name for t in fig.data] != list(groups)[: len(fig.data)]:
            fig.data = ()  # cleared, or a second setup renamed the traces
        for i, (name, series) in enumerate(groups.items()):
            rows = [s.row() for s in series]
            symbols = [
                "circle" if s.status == "done" else ("circle-open" if s.status == "running" else "x") for s in series
            ]
            method = series[0].method
            trace = dict(
                x=[r["params"] for r in rows],
                y=[r["mean_accuracy"] for r in rows],
                error_y=dict(type="data", array=[r["ci95"] or 0 for r in rows], visible=True, thickness=1.2, width=4),
                mode="lines+markers" if len(rows) > 1 else "markers",
                marker=dict(symbol=symbols, size=10, color=method_colour(method, i)),
                line=dict(color=method_colour(method, i)),
                customdata=[[r["size"], r["tasks"], r["planned"], r["status"], r["ci95"] or 0] for r in rows],
                hovertemplate=(
                    f"<b>{html.escape(name)}</b><br>size %{{customdata[0]}}, %{{x:,}} parameters<br>"
                    "accuracy %{y:.3f} ± %{customdata[4]:.3f}<br>%{customdata[1]} of %{customdata[2]} tasks "
                    "(%{customdata[3]})<extra></extra>"
                ),
            )
            if i < len(fig.data):
                fig.data[i].update(**trace)
            else:
                fig.add_trace(go.Scatter(name=name, **trace))


def table_html(rows: list[dict]) -> str:
    """The results table as HTML, one block of rows per task setup."""
    if not rows:
        return "<div style='color:#777'>No results yet: press Run.</div>"
    columns = ("method", "size", "params", "tasks", "accuracy ± 95% CI", "status")
    body, setup = [], None
    for r in rows:
        if r["setup"] != setup:
            setup = r["setup"]
            body.append(f"<tr><td colspan='{len(columns)}' class='setup'>{html.escape(setup)}</td></tr>")
        accuracy = (
            ""
            if r["mean_accuracy"] is None
            else f"{r['mean_accuracy']:.3f}" + ("" if r["ci95"] is None else f" ± {r['ci95']:.3f}")
        )
        cells = (r["method"], r["size"], f"{r['params']:,}", f"{r['tasks']}/{r['planned']}", accuracy, r["status"])
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in columns)
    return (
        f"{TABLE_STYLE}<table class='lg-results'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


class IndividualPanel:
    """Task setup controls, Run / Size sweep / Cancel / Clear, a progress bar, the chart and the table."""

    def __init__(self, context: Context, data_root: Path | None = None) -> None:
        self.context = context
        self.data_root = data_root if data_root is not None else resolve_root(None)
        self.worker = Worker()
        self.store = ResultStore()
        self.way = IntField(value=5, min=2, max=20, description="way", layout=widgets.Layout(width="140px"))
        self.shot = IntField(value=10, min=1, max=100, description="shot", layout=widgets.Layout(width="140px"))
        self.target_tasks = IntField(value=5, min=1, max=100, description="tasks", layout=widgets.Layout(width="140px"))
        self.mode = Toggles(
            options=[("fine-tune all", "finetune"), ("freeze learngene", "freeze")],
            value="finetune",
            style={"button_width": "120px"},
        )
        self.baselines = Check(value=True, description="baselines", indent=False, layout=widgets.Layout(width="100px"))
        self.target = Choice(
            options=[(NOVEL, "")],
            value="",
            description="target",
            tooltip="where target tasks come from: the run's novel classes, or a folder of the data folder",
            layout=widgets.Layout(width="340px"),
        )
        self.target.add_class("lg-individual-target")
        self.invert = Toggles(
            options=[("auto", "auto"), ("yes", "yes"), ("no", "no")],
            value="auto",
            description="invert",
            tooltips=[
                "invert a folder's images when their background disagrees with the training images'",
                "always invert a folder's images (dark ink on white becomes bright ink on black)",
                "use a folder's images as they are",
            ],
            style={"button_width": "48px"},
        )
        self.refresh_targets = widgets.Button(
            description="refresh folders", icon="refresh", layout=widgets.Layout(width="auto")
        )
        self.refresh_targets.on_click(lambda _: self.list_targets())
        self.run_button = widgets.Button(
            description="Run",
            button_style="primary",
            icon="play",
            tooltip="train individual models on few-shot target tasks",
        )
        self.sweep_button = widgets.Button(
            description="Size sweep", icon="line-chart", tooltip="learngene and scratch over several model sizes"
        )
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        for button, name in (
            (self.run_button, "run"),
            (self.sweep_button, "sweep"),
            (self.cancel_button, "cancel"),
            (self.clear_button, "clear"),
        ):
            button.add_class(f"lg-individual-{name}")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="progress", layout=widgets.Layout(width="300px")
        )
        self.status = widgets.HTML()
        self.status.add_class("lg-individual-status")
        report_to(
            self.status,
            way=self.way,
            shot=self.shot,
            target_tasks=self.target_tasks,
            mode=self.mode,
            baselines=self.baselines,
            target_folder=self.target,
            invert=self.invert,
        )
        self.table = widgets.HTML(table_html([]), layout=widgets.Layout(flex="0 0 470px", margin="45px 0 0 8px"))
        self.figure = new_figure()
        self._throttle = Throttle(self._render, on_error=self._chart_failed)
        self._chart_error = ""
        self._done = 0
        self._total = 0
        self._notes: list[str] = []
        self.list_targets()
        self.run_button.on_click(lambda _: self.start(sweep=False))
        self.sweep_button.on_click(lambda _: self.start(sweep=True))
        self.cancel_button.on_click(lambda _: self.worker.cancel())
        self.clear_button.on_click(lambda _: self.clear())
        self.widget = widgets.VBox(
            [
                heading(
                    "3 · Individual models on new classes",
                    "Small networks start from the learngene layers (or from scratch) and learn each few-shot target "
                    "task; "
                    "a point is the mean accuracy over target tasks, updated as each task finishes.",
                ),
                widgets.HBox([self.way, self.shot, self.target_tasks, self.baselines, self.mode]),
                widgets.HBox([self.target, self.refresh_targets, self.invert]),
                widgets.HBox(
                    [self.run_button, self.sweep_button, self.cancel_button, self.clear_button, self.progress]
                ),
                self.status,
                widgets.HBox([self.figure.widget, self.table], layout=widgets.Layout(align_items="flex-start")),
            ]
        )

    def apply(self, settings: Settings) -> None:
        """Take the task setup from settings."""
        self.way.value, self.shot.value, self.target_tasks.value = settings.way, settings.shot, settings.target_tasks
        self.mode.value, self.baselines.value = settings.mode, settings.baselines

    def list_targets(self) -> None:
        """Re-read the data folder into the target list; a choice that is gone falls back to the novel classes."""
        options = [(NOVEL, "")] + engine.target_folders(self.data_root)
        current = self.target.value
        self.target.options = options
        self.target.value = current if current in [name for _, name in options] else ""

    def run_changed(self, run: Run | None) -> None:
        """A different run is shown: earlier results belong to another learngene, so clear them."""
        if not self.worker.busy:
            self.clear()

    def clear(self) -> None:
        """Forget all results (not while a job runs)."""
        if self.worker.busy:
            self.status.value = message_html("a job is running: cancel it before clearing", "warning")
            return
        with self._throttle.lock:
            self.store.clear()
            draw(self.figure, self.store)
        self.table.value = table_html([])
        self.progress.value = 0
        self.status.value = ""

    def start(self, sweep: bool) -> bool:
        """Start a Run (or a size sweep) in the background; False when busy or when the setup is not usable."""
        if self.worker.busy:
            self.status.value = message_html("a job is already running: wait for it or press Cancel", "warning")
            return False
        try:
            run, layers = self.context()
            folder = engine.resolve_target(self.data_root, self.target.value) if self.target.value else None
            job = engine.prepare(
                run,
                layers,
                way=self.way.value,
                shot=self.shot.value,
                tasks=self.target_tasks.value,
                freeze=self.mode.value == "freeze",
                baselines=self.baselines.value,
                sweep=sweep,
                target=folder,
                invert=self.invert.value,
            )
        except Exception as exc:  # noqa: BLE001 - shown as a line (LearngeneError: no run, bad selection or setup)
            self.status.value = message_html(one_line(exc), "error")
            return False
        self._done = 0
        self._chart_error = ""
        self._notes = []
        self.progress.value, self.progress.max = 0, max(job.estimate, 1)
        self._set_busy(True)
        what = (
            "size sweep: learngene and scratch at several sizes"
            if sweep
            else f"run: {job.estimate} target-task trainings"
        )
        if job.target_kind == engine.EPISODES:
            what += " (way, shot and tasks as the episodes hold them)"
        self.status.value = message_html(f"{what}, learngene {block_label(job.layers)}...")

        def note(line: str) -> None:
            self._notes.append(line)
            self.status.value = self._with_notes(message_html(f"{what}, learngene {block_label(job.layers)}..."))

        def listener(event: object) -> None:
            if isinstance(event, TargetTaskFinished):
                with self._throttle.lock:
                    self.store.add(
                        event.method,
                        engine.size_label(event.method, event.size),
                        job.setup,
                        event.params,
                        event.tasks,
                        event.accuracy,
                    )
                    self._done += 1
                self._throttle.request()
            elif isinstance(event, MethodFinished):
                self._throttle.request()

        def set_total(total: int) -> None:
            self._total = total
            self._throttle.request()

        self._total = job.estimate
        return self.worker.start(
            lambda should_stop: job.execute([listener], should_stop, set_total, note), self._finished
        )

    def _with_notes(self, line_html: str) -> str:
        """A status line followed by core's notes about the targets, one per line."""
        return "<br>".join([line_html] + [message_html(n, "warning") for n in self._notes])

    def _chart_failed(self, line: str) -> None:
        self._chart_error = line
        self.status.value = message_html(
            f"the chart could not be updated ({line}); the table below is complete", "error"
        )

    def _render(self) -> None:
        self.progress.max = max(self._total, self._done, 1)
        self.progress.value = min(self._done, self.progress.max)
        draw(self.figure, self.store)
        self.table.value = table_html(self.store.rows())

    def _finished(self, outcome: Outcome) -> None:
        if outcome.status != "done":
            with self._throttle.lock:
                self.store.close_running("cancelled" if outcome.status == "cancelled" else "failed")
        self._throttle.request()
        self._throttle.flush()
        if outcome.status == "done" and self._chart_error:
            self.status.value = message_html(
                f"finished: {self._done} target-task trainings, but the chart could not be updated "
                f"({self._chart_error}); the table is complete",
                "warning",
            )
        elif outcome.status == "done":
            self.status.value = self._with_notes(message_html(f"finished: {self._done} target-task trainings", "info"))
        elif outcome.status == "cancelled":
            self.status.value = message_html(
                f"cancelled after {self._done} target-task trainings: finished points are kept (x if incomplete)",
                "warning",
            )
        else:
            self.status.value = message_html(outcome.message, "error")
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.sweep_button.disabled = busy
        self.clear_button.disabled = busy
        self.cancel_button.disabled = not busy
