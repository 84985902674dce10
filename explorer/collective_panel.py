"""Collective panel: train or resume a collective run from the UI and watch it learn and grow, live."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.collective.config import PRESETS, CollectiveConfig, preset
from core.collective.runs import CONFIG, Run, open_run
from core.collective.training import train_collective
from core.data.datasets import DATASETS
from core.errors import LearngeneError
from core.events import EpochEnded, TaskFinished, TaskStarted
from explorer.fields import Choice, TextField, report_to
from explorer.figure import LiveFigure
from explorer.settings import new_run_dir
from explorer.style import base_layout, heading, message_html
from explorer.worker import Outcome, Throttle, Worker, one_line

# Trace order in the figure: loss, accuracy, chance line, AUROC (MSP), AUROC (energy), then one per layer width.
LOSS, ACCURACY, CHANCE, AUROC_MSP, AUROC_ENERGY, FIRST_WIDTH = range(6)


@dataclass
class CollectiveHistory:
    """What the panel draws: per-epoch loss/accuracy, per-task widths and AUROC."""

    epochs: list[tuple[int, int, int, float, float]] = field(default_factory=list)
    widths: dict[int, dict[str, int]] = field(default_factory=dict)
    auroc: dict[int, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_run(cls, run: Run) -> CollectiveHistory:
        """History of a run's finished tasks, read from its metrics."""
        history = cls()
        if run.finished_tasks == 0:
            return history
        for row in run.metrics():
            if row["kind"] == "epoch":
                history.epochs.append((row["task"], row["epoch"], run.config.epochs, row["loss"], row["accuracy"]))
            elif row["kind"] == "task":
                history.widths[row["task"]] = dict(row["widths"])
                history.auroc[row["task"]] = (_num(row.get("auroc_msp")), _num(row.get("auroc_energy")))
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


def _num(value: object) -> float:
    return math.nan if value is None else float(value)


def new_figure() -> LiveFigure:
    """The panel's 2x2 figure: loss, accuracy, layer widths, open-world AUROC."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "Training loss per epoch",
            "Training accuracy per epoch",
            "Layer widths after each task (the network grows)",
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
    layout = base_layout(
        560,
        legend=dict(x=0.43, y=0.0, xanchor="left", yanchor="bottom", font=dict(size=10)),
        legend2=dict(x=1.0, y=0.42, xanchor="right", yanchor="top", orientation="h", font=dict(size=10)),
        margin=dict(l=60, r=20, t=40, b=50),
    )
    fig.update_layout(**layout)
    fig.update_xaxes(title_text="task (fraction: epochs within it)", row=1, col=1)
    fig.update_xaxes(title_text="task (fraction: epochs within it)", row=1, col=2)
    fig.update_xaxes(title_text="task", dtick=1, row=2, col=1)
    fig.update_xaxes(title_text="task", dtick=1, row=2, col=2)
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(title_text="channels", row=2, col=1)
    fig.update_yaxes(title_text="AUROC (unknown vs seen)", range=[0, 1.02], row=2, col=2)
    return LiveFigure(fig)


def draw(fig: LiveFigure, history: CollectiveHistory) -> None:
    """Redraw every trace from the history (one batched message)."""
    layers = list(next(iter(history.widths.values()), {}).keys()) if history.widths else []
    tasks = sorted(history.widths)
    with fig.updating():
        existing = len(fig.data) - FIRST_WIDTH
        if existing != len(layers):
            fig.data = fig.data[:FIRST_WIDTH]
            for name in layers:
                fig.add_trace(
                    go.Scatter(
                        name=name,
                        mode="lines+markers",
                        line=dict(shape="hv"),
                        marker=dict(size=5),
                        hovertemplate=f"{name}<br>task %{{x}}<br>%{{y}} channels<extra></extra>",
                    ),
                    2,
                    1,
                )
        xs = [t + (e + 1) / n for t, e, n, _, _ in history.epochs]
        fig.data[LOSS].update(x=xs, y=[row[3] for row in history.epochs])
        fig.data[ACCURACY].update(x=xs, y=[row[4] for row in history.epochs])
        auroc_tasks = sorted(history.auroc)
        fig.data[AUROC_MSP].update(x=auroc_tasks, y=[_none(history.auroc[t][0]) for t in auroc_tasks])
        fig.data[AUROC_ENERGY].update(x=auroc_tasks, y=[_none(history.auroc[t][1]) for t in auroc_tasks])
        span = [min(tasks, default=0), max(tasks, default=0)]
        fig.data[CHANCE].update(x=span, y=[0.5, 0.5], name="chance")
        for i, name in enumerate(layers):
            fig.data[FIRST_WIDTH + i].update(x=tasks, y=[history.widths[t].get(name) for t in tasks])


def _committed(run_dir: Path) -> CollectiveHistory:
    """The history a training job continues: the finished tasks of a run being resumed, else nothing."""
    try:
        return CollectiveHistory.from_run(open_run(run_dir)) if (run_dir / CONFIG).is_file() else CollectiveHistory()
    except LearngeneError:
        return CollectiveHistory()


def _none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


class CollectivePanel:
    """Dataset and preset pickers, a Train/resume button with progress, and the live training charts."""

    def __init__(
        self,
        runs_root: Path,
        on_start: Callable[[str, CollectiveConfig], None],
        on_trained: Callable[[str], None],
        live: Callable[[object], None],
        redraw_live: Callable[[], None],
    ) -> None:
        self.runs_root = runs_root
        self.on_start = on_start
        self.on_trained = on_trained
        self.live = live
        self.redraw_live = redraw_live
        self.worker = Worker()
        self.history = CollectiveHistory()
        self.dataset = Choice(
            options=list(DATASETS), value="glyphs", description="dataset", layout=widgets.Layout(width="210px")
        )
        self.preset = Choice(
            options=list(PRESETS), value="fast", description="preset", layout=widgets.Layout(width="210px")
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
            value=0, min=0, max=1, description="epochs", layout=widgets.Layout(width="340px")
        )
        self.status = widgets.HTML()
        self.status.add_class("lg-train-status")
        self.run_name.add_class("lg-run-name")
        report_to(self.status, dataset=self.dataset, preset=self.preset, run_name=self.run_name)
        self.figure = new_figure()
        self._throttle = Throttle(self._render, on_error=self._charts_failed)
        self._done_epochs = 0
        self.train_button.add_class("lg-train")
        self.cancel_button.add_class("lg-train-cancel")
        self.dataset.observe(self._suggest_name, "value")
        self.preset.observe(self._suggest_name, "value")
        self.train_button.on_click(lambda _: self.train())
        self.cancel_button.on_click(lambda _: self.worker.cancel())
        self.widget = widgets.VBox(
            [
                heading(
                    "1 · Collective model",
                    "One network learns a stream of small tasks and is widened before some of them; finished tasks are "
                    "saved, so training can be resumed.",
                ),
                widgets.HBox([self.dataset, self.preset, self.run_name]),
                widgets.HBox([self.train_button, self.cancel_button, self.progress]),
                self.status,
                self.figure.widget,
            ]
        )

    def _suggest_name(self, _change: object = None) -> None:
        self.run_name.value = f"{self.preset.value}-{self.dataset.value}"

    def show_run(self, run: Run | None) -> None:
        """Draw a run's finished tasks (or clear the charts when there is none)."""
        history = CollectiveHistory.from_run(run) if run is not None else CollectiveHistory()
        with self._throttle.lock:
            self.history = history
            draw(self.figure, history)

    def train(self, preset_name: str | None = None, dataset: str | None = None) -> bool:
        """Start training in the background (optionally choosing preset and dataset first); False if busy or invalid."""
        if self.worker.busy:
            self.status.value = message_html("training is already running: wait for it or press Cancel", "warning")
            return False
        if preset_name is not None:
            self.preset.value = preset_name
        if dataset is not None:
            self.dataset.value = dataset
        try:
            config = preset(self.preset.value, dataset=self.dataset.value)
            run_dir = new_run_dir(self.runs_root, self.run_name.value)
        except Exception as exc:  # noqa: BLE001 - shown as a line (LearngeneError: bad preset, dataset or run name)
            self.status.value = message_html(one_line(exc), "error")
            return False
        history = self.history = _committed(run_dir)
        self.on_start(run_dir.name, config)
        self.progress.max = config.tasks * config.epochs
        self.progress.value = 0
        self._set_busy(True)
        self.status.value = message_html(
            f"training {run_dir.name}: {config.tasks} tasks x {config.epochs} epochs on {config.dataset}..."
        )
        name = run_dir.name

        def listener(event: object) -> None:
            with self._throttle.lock:
                history.observe(event)  # this job's history, even if another run is shown meanwhile
                if isinstance(event, EpochEnded):
                    self._done_epochs = event.task * event.epochs + event.epoch + 1
            self.live(event)
            self._throttle.request()

        def job(should_stop: Callable[[], bool]) -> Run:
            return train_collective(config, run_dir, resume=True, listeners=[listener], should_stop=should_stop)

        self._done_epochs = 0
        return self.worker.start(job, lambda outcome: self._finished(name, outcome))

    def _charts_failed(self, line: str) -> None:
        self.status.value = message_html(f"the charts could not be updated ({line}); training goes on", "error")

    def _render(self) -> None:
        self.progress.value = self._done_epochs
        draw(self.figure, self.history)
        self.redraw_live()

    def _finished(self, name: str, outcome: Outcome) -> None:
        self._throttle.flush()
        if outcome.status == "done":
            run = outcome.result
            self.progress.value = self.progress.max
            self.status.value = message_html(f"run {name} finished: {run.finished_tasks} tasks on disk", "info")
        elif outcome.status == "cancelled":
            self.status.value = message_html(
                f"training of {name} cancelled: finished tasks are saved; press Train / resume to continue", "warning"
            )
        else:
            self.status.value = message_html(outcome.message, "error")
        self._set_busy(False)
        self.on_trained(name)

    def _set_busy(self, busy: bool) -> None:
        self.train_button.disabled = busy
        self.cancel_button.disabled = not busy
        for control in (self.dataset, self.preset, self.run_name):
            control.disabled = busy
