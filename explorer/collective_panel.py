"""Collective panel: train or resume a collective run from the UI and watch it learn, grow and stay healthy, live."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.collective.config import PRESETS, CollectiveConfig, preset
from core.collective.health import health_rows
from core.collective.run_folders import new_run_dir
from core.collective.runs import CONFIG, Run, open_run
from core.data.datasets import DATASETS, DatasetInfo, describe
from core.errors import LearngeneError
from core.events import EpochEnded, TaskFinished, TaskStarted
from core.jobs.shared import shared_engine, shared_threads
from core.jobs.spec import CollectiveJob, data_root
from explorer import health_figure
from explorer.fields import Choice, TextField, report_to
from explorer.figure import LiveFigure
from explorer.jobs import JobRunner
from explorer.style import base_layout, heading, message_html
from explorer.wording import page_words
from explorer.worker import Outcome, Throttle, one_line

# Trace order in the figure: loss, accuracy, chance line, AUROC (MSP), AUROC (energy), layer widths (a heatmap).
LOSS, ACCURACY, CHANCE, AUROC_MSP, AUROC_ENERGY, WIDTHS = range(6)
# Live charts are redrawn at most every two seconds: the browser redraws each whole figure, and at 5 per second that
# took more CPU than the training (bench_page_training); the progress label still moves 5 times a second.
CHART_INTERVAL = 2.0
MAX_CELL_TEXT = 16  # tasks up to which every width cell carries its number (later: only where a width changes)
PLACEHOLDER = (
    "Loss, accuracy, layer widths and open-world AUROC appear here while a run trains, or when you pick a run."
)


@dataclass
class CollectiveHistory:
    """What the panel draws: per-epoch loss/accuracy, per-task widths, AUROC and health records."""

    epochs: list[tuple[int, int, int, float, float]] = field(default_factory=list)
    widths: dict[int, dict[str, int]] = field(default_factory=dict)
    auroc: dict[int, tuple[float, float]] = field(default_factory=dict)
    health: dict[int, dict] = field(default_factory=dict)
    expansion_tasks: int = 0
    recorded_health: bool = True  # False for runs trained before health was recorded

    @classmethod
    def from_run(cls, run: Run) -> CollectiveHistory:
        """History of a run's finished tasks, read from its metrics."""
        history = cls(expansion_tasks=run.config.expansion_tasks)
        if run.finished_tasks == 0:
            return history
        metrics = run.metrics()
        for row in metrics:
            if row["kind"] == "epoch":
                history.epochs.append((row["task"], row["epoch"], run.config.epochs, row["loss"], row["accuracy"]))
            elif row["kind"] == "task":
                history.widths[row["task"]] = dict(row["widths"])
                history.auroc[row["task"]] = (_num(row.get("auroc_msp")), _num(row.get("auroc_energy")))
        history.health = {row["task"]: row for row in health_rows(metrics)}
        history.recorded_health = bool(history.health)
        return history

    def observe(self, event: object) -> None:
        """Add one engine event."""
        if isinstance(event, TaskStarted):
            self.widths[event.task] = dict(event.widths)
        elif isinstance(event, EpochEnded):
            self.epochs.append((event.task, event.epoch, event.epochs, event.loss, event.accuracy))
        elif isinstance(event, TaskFinished):
            self.widths[event.task] = dict(event.widths)
            self.auroc[event.task] = (event.auroc_msp, event.auroc_energy)
            if event.health:
                self.health[event.task] = dict(task=event.task, **event.health)

    def health_rows(self) -> list[dict]:
        """Health records in task order (with core's healthy verdict recomputed by the chart)."""
        return [self.health[t] for t in sorted(self.health)]


def _num(value: object) -> float:
    return math.nan if value is None else float(value)


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


def draw(fig: LiveFigure, history: CollectiveHistory) -> None:
    """Redraw every trace from the history (one batched message); every layer is one row of the widths map."""
    if not history.widths and not history.epochs:
        fig.placeholder(PLACEHOLDER)
        return
    layers = list(next(iter(history.widths.values()), {}).keys()) if history.widths else []
    tasks = sorted(history.widths)
    with fig.updating():
        xs = [t + (e + 1) / n for t, e, n, _, _ in history.epochs]
        fig.data[LOSS].update(x=xs, y=[row[3] for row in history.epochs])
        fig.data[ACCURACY].update(x=xs, y=[row[4] for row in history.epochs])
        auroc_tasks = sorted(history.auroc)
        fig.data[AUROC_MSP].update(x=auroc_tasks, y=[_none(history.auroc[t][0]) for t in auroc_tasks])
        fig.data[AUROC_ENERGY].update(x=auroc_tasks, y=[_none(history.auroc[t][1]) for t in auroc_tasks])
        span = [min(tasks, default=0), max(tasks, default=0)]
        fig.data[CHANCE].update(x=span, y=[0.5, 0.5], name="chance")
        z = [[history.widths[t].get(name) for t in tasks] for name in layers]
        fig.data[WIDTHS].update(
            x=tasks, y=layers, z=z, text=_changes(z, len(tasks) <= MAX_CELL_TEXT), texttemplate="%{text}"
        )
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


def _changes(z: list[list[int | None]], every: bool) -> list[list[str]]:
    """Cell labels of the widths map: every width on short runs, else the first and each change (a growth step)."""
    return [
        ["" if v is None or not (every or i == 0 or row[i - 1] != v) else str(v) for i, v in enumerate(row)]
        for row in z
    ]


def _committed(run_dir: Path) -> CollectiveHistory:
    """The history a training job continues: the finished tasks of a run being resumed, else nothing."""
    try:
        return CollectiveHistory.from_run(open_run(run_dir)) if (run_dir / CONFIG).is_file() else CollectiveHistory()
    except LearngeneError:
        return CollectiveHistory()


def _none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


def _finished_tasks(run_dir: Path) -> int:
    """Tasks committed in a run directory (0 when it holds no readable run)."""
    try:
        return open_run(run_dir).finished_tasks if (run_dir / CONFIG).is_file() else 0
    except LearngeneError:
        return 0


def training_problem(info: DatasetInfo, preset_name: str) -> str | None:
    """Why the preset cannot train on the dataset here (in page terms), or None when it can."""
    if not info.available:
        return page_words((*info.reason, ": ", *info.how_to_get) if info.how_to_get else info.reason)
    config = PRESETS[preset_name]
    needed = config.images_per_class + config.heldout_per_class
    if info.classes and info.images is not None and info.images // info.classes < needed:
        return (
            f"the {preset_name} preset needs {needed} images per class ({config.images_per_class} to train on, "
            f"{config.heldout_per_class} held out); {info.name} has {info.images // info.classes}: choose another "
            "preset or dataset"
        )
    return None


def duration(seconds: float) -> str:
    """ "45 s", "3 min 10 s", "2 h 5 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class CollectivePanel:
    """Dataset and preset pickers, a Train/resume button with progress, and the live training and health charts.

    `on_start(name, config)` runs once training has really begun (its first task started), `on_trained(name, kept)`
    after the job, where `kept` says whether the run folder holds finished tasks; a job that ends before its first
    task removes the folder it created, so a failed start leaves nothing behind.
    """

    def __init__(
        self,
        runs_root: Path,
        on_start: Callable[[str, CollectiveConfig], None],
        on_trained: Callable[[str, bool], None],
        live: Callable[[object], None],
        redraw_live: Callable[[], None],
    ) -> None:
        self.runs_root = runs_root
        self.on_start = on_start
        self.on_trained = on_trained
        self.live = live
        self.redraw_live = redraw_live
        self.jobs = JobRunner(lambda: shared_engine(runs_root))
        self.history = CollectiveHistory()
        self.datasets: dict[str, DatasetInfo] = {}
        self.dataset = Choice(
            options=list(DATASETS), value="glyphs", description="dataset", layout=widgets.Layout(width="250px")
        )
        self.preset = Choice(
            options=list(PRESETS), value="fast", description="preset", layout=widgets.Layout(width="250px")
        )
        self.run_name = TextField(value="fast-glyphs", description="run name", layout=widgets.Layout(width="260px"))
        self.train_button = widgets.Button(
            description="Train / resume",
            button_style="primary",
            icon="play",
            tooltip="train a new run, or continue an interrupted one with the same settings",
        )
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            disabled=True,
            tooltip="stop after the current batch; finished tasks stay on disk",
        )
        self.progress = widgets.FloatProgress(
            value=0, min=0, max=1, description="epochs", layout=widgets.Layout(width="300px")
        )
        self.progress_label = widgets.HTML()
        self.progress_label.add_class("lg-train-progress")
        self.unavailable = widgets.HTML()
        self.unavailable.add_class("lg-train-unavailable")
        self.status = widgets.HTML()
        self.status.add_class("lg-train-status")
        self.run_name.add_class("lg-run-name")
        self.dataset.add_class("lg-dataset")
        self.preset.add_class("lg-preset")
        report_to(self.status, dataset=self.dataset, preset=self.preset, run_name=self.run_name)
        self.figure = new_figure()
        self.health_figure = health_figure.new_figure()
        self.health_figure.frame.add_class("lg-health")
        self.health_help = widgets.HTML(health_figure.EXPLANATION, layout=widgets.Layout(display="none"))
        self._throttle = Throttle(self._render, CHART_INTERVAL, on_error=self._charts_failed)
        self._progress = Throttle(self._show_progress)
        self.training = False  # from Train until the job's end is shown (the worker thread is still alive then)
        self._done_epochs = 0
        self._job_epochs = 0
        self._job_started = 0.0
        self._position = ""
        self.train_button.add_class("lg-train")
        self.cancel_button.add_class("lg-train-cancel")
        self.dataset.observe(self._choice_changed, "value")
        self.preset.observe(self._choice_changed, "value")
        self.train_button.on_click(lambda _: self.train())
        self.cancel_button.on_click(lambda _: self.jobs.cancel())
        self.controls = widgets.VBox(
            [
                widgets.HBox([self.dataset, self.preset, self.run_name]),
                widgets.HBox([self.train_button, self.cancel_button, self.progress, self.progress_label]),
                self.unavailable,
            ]
        )
        self.widget = widgets.VBox(
            [
                heading(
                    "1 · Collective model",
                    "One network learns a stream of small tasks and is widened before some of them; finished tasks are "
                    "saved, so training can be resumed.",
                ),
                self.controls,
                self.status,
                self.figure.frame,
                self.health_figure.frame,
                self.health_help,
            ]
        )
        self.widget.add_class("lg-panel-collective")
        self.check_datasets()
        draw(self.figure, self.history)
        self._draw_health(self.history, health_figure.NO_RUN)

    # ------------------------------------------------------------ choices

    def check_datasets(self) -> None:
        """Look up which datasets this machine has, label the menus, and disable Train for impossible choices."""
        self.datasets = {name: describe(name) for name in DATASETS}
        self.dataset.options = [
            (name if info.available else f"{name} (not here)", name) for name, info in self.datasets.items()
        ]
        labels = []
        for name in PRESETS:
            usable = [d for d, info in self.datasets.items() if training_problem(info, name) is None]
            labels.append((name if usable else f"{name} (no dataset here fits it)", name))
        self.preset.options = labels
        self._choice_changed()

    @property
    def problem(self) -> str | None:
        """Why Train cannot work with the current dataset and preset, or None."""
        info = self.datasets.get(self.dataset.value)
        return None if info is None else training_problem(info, self.preset.value)

    def _choice_changed(self, _change: object = None) -> None:
        self.run_name.value = f"{self.preset.value}-{self.dataset.value}"
        problem = self.problem
        self.unavailable.value = message_html(f"cannot train here: {problem}", "warning") if problem else ""
        if not self.jobs.busy:
            self.train_button.disabled = problem is not None

    # ------------------------------------------------------------ drawing

    def show_run(self, run: Run | None) -> None:
        """Draw a run's finished tasks (or the placeholders when there is none)."""
        history = CollectiveHistory.from_run(run) if run is not None else CollectiveHistory()
        with self._throttle.lock:
            self.history = history
            draw(self.figure, history)
            old = run is not None and run.finished_tasks > 0 and not history.recorded_health
            self._draw_health(history, health_figure.NO_HEALTH if old else health_figure.NO_RUN)

    def _draw_health(self, history: CollectiveHistory, note: str) -> None:
        rows = history.health_rows()
        health_figure.draw(self.health_figure, rows, note)
        self.health_help.layout.display = "" if rows else "none"

    # ------------------------------------------------------------ training

    def train(self, preset_name: str | None = None, dataset: str | None = None) -> bool:
        """Start training in the background (optionally choosing preset and dataset first); False if busy or invalid."""
        if self.jobs.busy:
            self.status.value = message_html("training is already running: wait for it or press Cancel", "warning")
            return False
        if preset_name is not None:
            self.preset.value = preset_name
        if dataset is not None:
            self.dataset.value = dataset
        if self.problem is not None:
            self.status.value = message_html(f"cannot train here: {self.problem}", "error")
            return False
        try:
            config = preset(self.preset.value, dataset=self.dataset.value)
            run_dir = new_run_dir(self.runs_root, self.run_name.value)
        except Exception as exc:  # noqa: BLE001 - shown as a line (LearngeneError: bad preset, dataset or run name)
            self.status.value = message_html(one_line(exc), "error")
            return False
        history = _committed(run_dir)
        name = run_dir.name
        self.progress.max = config.tasks * config.epochs
        self.progress.value = 0
        self._done_epochs = self._job_epochs = 0
        self._position = ""
        self.progress_label.value = ""
        self._set_busy(True)
        self.status.value = message_html(f"preparing {name}: reading {config.dataset} (the charts start with task 1)")
        started = []

        def listener(event: object) -> None:
            if isinstance(event, TaskStarted) and not started:  # from here on the charts follow this job
                started.append(True)
                with self._throttle.lock:
                    self.history = history
                self.on_start(name, config)
            with self._throttle.lock:
                history.observe(event)  # this job's history, even if another run is shown meanwhile
                if isinstance(event, EpochEnded):
                    self._done_epochs = event.task * event.epochs + event.epoch + 1
                    self._job_epochs += 1
                    self._position = f"task {event.task + 1}/{config.tasks}, epoch {event.epoch + 1}/{event.epochs}"
            self.live(event)
            self._progress.request()
            self._throttle.request()

        threads = shared_threads(run_dir)
        job = CollectiveJob(config, threads, data_root(config.dataset, None), name=name)
        cores = f"{threads} core{'s' if threads > 1 else ''}"
        self.status.value = message_html(
            f"training {name} on {cores}: {config.tasks} tasks x {config.epochs} epochs on {config.dataset}"
        )
        self._job_started = time.monotonic()
        return self.jobs.start(
            job, [listener], lambda outcome: self._finished(name, run_dir, outcome), on_queued=self._queued
        )

    def _queued(self, ahead: int) -> None:
        """The shared engine is busy: say how many jobs are ahead of this one."""
        if self.jobs.busy and not self._position:
            self.progress_label.value = (
                f"<span style='color:#333'>&nbsp;waiting: {ahead} job{'s' if ahead > 1 else ''} of other visitors "
                "ahead of yours on the shared engine</span>"
            )

    def _charts_failed(self, line: str) -> None:
        self.status.value = message_html(f"the charts could not be updated ({line}); training goes on", "error")

    def _show_progress(self) -> None:
        self.progress.value = self._done_epochs
        if self._position:
            elapsed = time.monotonic() - self._job_started
            left = self.progress.max - self._done_epochs
            rate = elapsed / max(self._job_epochs, 1)
            self.progress_label.value = (
                f"<span style='color:#333'>&nbsp;{self._position} · {duration(elapsed)} so far, "
                f"about {duration(rate * left)} left</span>"
            )

    def _render(self) -> None:
        draw(self.figure, self.history)
        self._draw_health(self.history, health_figure.LIVE)
        self.redraw_live()

    def _finished(self, name: str, run_dir: Path, outcome: Outcome) -> None:
        self._progress.flush()
        self._throttle.flush()
        finished = _finished_tasks(run_dir)
        kept = finished > 0
        if outcome.status == "done":
            self.progress.value = self.progress.max
            took = duration(time.monotonic() - self._job_started)
            self.status.value = message_html(
                f"run {name} finished: {finished} tasks on disk (this training took {took})", "info"
            )
        elif outcome.status == "cancelled":
            self.status.value = message_html(
                f"training of {name} cancelled: finished tasks are saved; press Train / resume to continue"
                if kept
                else f"training of {name} cancelled before its first task ended: nothing was written",
                "warning",
            )
        else:
            left = (
                "its finished tasks are kept" if kept else "nothing was written, the page shows what it showed before"
            )
            self.status.value = message_html(f"training {name} failed: {outcome.message} ({left})", "error")
        self.progress_label.value = ""
        self._set_busy(False)
        self.on_trained(name, kept)

    def _set_busy(self, busy: bool) -> None:
        self.training = busy
        self.train_button.disabled = busy or self.problem is not None
        self.cancel_button.disabled = not busy
        for control in (self.dataset, self.preset, self.run_name):
            control.disabled = busy
