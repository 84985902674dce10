"""Collective panel: train or resume a collective run from the UI and watch it learn, grow and stay healthy, live."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from core.collective.config import PRESETS, CollectiveConfig, preset
from core.collective.run_folders import new_run_dir
from core.collective.runs import Run
from core.data.datasets import DATASETS, DatasetInfo, describe
from core.events import EpochEnded, TaskStarted
from core.jobs.shared import shared_engine, shared_threads
from core.jobs.spec import CollectiveJob, data_root
from explorer.collective import health_figure
from explorer.collective.history import CollectiveHistory, committed_history, finished_tasks
from explorer.collective.training_figure import draw, new_figure
from explorer.jobs import JobRunner
from explorer.view import View
from explorer.widgets.fields import Choice, TextField, report_to
from explorer.widgets.outcome import Outcome, one_line
from explorer.widgets.style import heading, message_html
from explorer.widgets.throttle import Throttle
from explorer.widgets.wording import page_words

# Live charts are redrawn (in place) at most every two seconds: at 5 whole redraws per second the browser took more CPU
# than the training (bench_page_training); the progress label still moves 5 times a second.
CHART_INTERVAL = 2.0


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
        redraw_live: Callable[..., None],
        view: View | None = None,
    ) -> None:
        self.view_model = view if view is not None else View()
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
        self.view_model.update(dataset=self.dataset.value, preset=self.preset.value)
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

    def _draw_health(self, history: CollectiveHistory, note: str, in_place: bool = False) -> None:
        rows = history.health_rows()
        health_figure.draw(self.health_figure, rows, note, in_place)
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
        history = committed_history(run_dir)
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
        draw(self.figure, self.history, in_place=True)
        self._draw_health(self.history, health_figure.LIVE, in_place=True)
        self.redraw_live(in_place=True)

    def _finished(self, name: str, run_dir: Path, outcome: Outcome) -> None:
        self._progress.flush()
        self._throttle.flush()
        finished = finished_tasks(run_dir)
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
