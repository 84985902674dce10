"""Individual-model panel: few-shot target tasks for the learngene and the baselines, drawn as they finish."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from core.collective.runs import Run
from core.data.datasets import resolve_root
from core.events import MethodFinished, Note, PlanReady, TargetTaskFinished
from core.jobs.execute import Outcome as JobOutcome
from core.jobs.shared import shared_engine, shared_store, shared_threads
from core.learngene.selection import block_label
from explorer.individual import plan
from explorer.individual.results import ResultStore
from explorer.individual.size_chart import draw, new_figure
from explorer.individual.table import STRATEGIES, table_html
from explorer.jobs import JobRunner
from explorer.settings import Settings
from explorer.view import View
from explorer.widgets.fields import Check, Choice, IntField, Toggles, point_at_fixes, report_to
from explorer.widgets.outcome import Outcome, one_line
from explorer.widgets.style import heading, message_html
from explorer.widgets.throttle import Throttle

Context = Callable[[], tuple[Run, tuple[str, ...]]]
NOVEL = "novel classes of the run"


class IndividualPanel:
    """Task setup controls, Run / Size sweep / Cancel / Clear, a progress bar, the chart and the table."""

    def __init__(self, context: Context, data_root: Path | None = None, view: View | None = None) -> None:
        self.view_model = view if view is not None else View()
        self.context = context
        self.data_root = data_root if data_root is not None else resolve_root(None)
        self.jobs = JobRunner(lambda: shared_engine(self._runs_root))
        self._runs_root = Path(".")
        self.store = ResultStore()
        self.way = IntField(value=5, min=2, max=20, description="way", layout=widgets.Layout(width="140px"))
        self.shot = IntField(value=1, min=1, max=100, description="shot", layout=widgets.Layout(width="140px"))
        self.target_tasks = IntField(
            value=20, min=1, max=100, description="tasks", layout=widgets.Layout(width="140px")
        )
        self.fields = {"way": self.way, "shot": self.shot}  # by setting id, outlined when an error names them
        self.mode = Toggles(
            options=[("fine-tune all", "finetune"), ("freeze learngene", "freeze")],
            value="finetune",
            style={"button_width": "120px"},
        )
        self.baselines = Check(
            value=False,
            description="other strategies and baselines",
            indent=False,
            tooltip="front inheritance, weight selection, other windows, the collective fine-tuned, nearest centroids",
            layout=widgets.Layout(width="230px"),
        )
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
        self.target.observe(lambda _: self._show_invert(), "value")
        self.run_button = widgets.Button(
            description="Run",
            button_style="primary",
            icon="play",
            tooltip="train individual models on few-shot target tasks",
        )
        self.sweep_button = widgets.Button(
            description="Size sweep",
            icon="line-chart",
            tooltip="learngene, front inheritance, weight selection, each with its twin, at 1/8 to 1 of the widths",
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
            value=0, min=0, max=1, description="progress", layout=widgets.Layout(width="260px")
        )
        self.progress_label = widgets.HTML()
        self.progress_label.add_class("lg-individual-progress")
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
        self.table = widgets.HTML(table_html([]), layout=widgets.Layout(max_width="1000px", margin="4px 0 0 0"))
        self.figure = new_figure()
        draw(self.figure, self.store)
        self._throttle = Throttle(self._render, on_error=self._chart_failed)
        self._chart_error = ""
        self._done = 0
        self._total = 0
        self._latest = ""
        self._notes: list[str] = []
        self._shown_run: tuple[str, int] | None = None
        self.list_targets()
        for field in (self.way, self.shot, self.target_tasks, self.mode, self.baselines):
            field.observe(lambda _: self._report(), "value")
        self._report()
        self.run_button.on_click(lambda _: self.start(sweep=False))
        self.sweep_button.on_click(lambda _: self.start(sweep=True))
        self.cancel_button.on_click(lambda _: self.jobs.cancel())
        self.clear_button.on_click(lambda _: self.clear())
        self.widget = widgets.VBox(
            [
                heading(
                    "3 · Individual models on new classes",
                    "Small networks start from the learngene layers (or from scratch) and learn each few-shot target "
                    "task (way classes, shot training images each); a point is the mean accuracy over the target "
                    "tasks, updated as each task finishes.",
                ),
                widgets.HTML(STRATEGIES),
                widgets.HBox([self.way, self.shot, self.target_tasks, self.mode, self.baselines]),
                widgets.HBox([self.target, self.refresh_targets, self.invert]),
                widgets.HBox(
                    [
                        self.run_button,
                        self.sweep_button,
                        self.cancel_button,
                        self.clear_button,
                        self.progress,
                        self.progress_label,
                    ]
                ),
                self.status,
                self.figure.frame,
                self.table,
            ]
        )
        self.widget.add_class("lg-panel-individual")

    def apply(self, settings: Settings) -> None:
        """Take the task setup from settings."""
        self.way.value, self.shot.value, self.target_tasks.value = settings.way, settings.shot, settings.target_tasks
        self.mode.value, self.baselines.value = settings.mode, settings.baselines

    def _report(self) -> None:
        """Write the task setup into the view."""
        self.view_model.update(
            way=self.way.value,
            shot=self.shot.value,
            target_tasks=self.target_tasks.value,
            mode=self.mode.value,
            baselines=self.baselines.value,
        )

    def list_targets(self) -> None:
        """Re-read the data folder into the target list; a choice that is gone falls back to the novel classes."""
        options = [(NOVEL, "")] + plan.target_folders(self.data_root)
        current = self.target.value
        self.target.options = options
        self.target.value = current if current in [name for _, name in options] else ""
        self._show_invert()

    def _show_invert(self) -> None:
        """Inverting applies to a folder's images only: hidden while the target is the run's own novel classes."""
        self.invert.layout.display = "" if self.target.value else "none"

    def run_changed(self, run: Run | None) -> None:
        """The shown run changed: results of another run (or of fewer finished tasks) are cleared, and the page says
        so; the same run shown again keeps them."""
        shown = None if run is None else (str(run.path.resolve()), run.finished_tasks)
        before, self._shown_run = self._shown_run, shown
        if shown == before or self.jobs.busy:
            return
        had = bool(self.store.series)
        self.clear()
        if had and before is not None:
            name = Path(before[0]).name
            why = "another run is shown" if shown is None or shown[0] != before[0] else "the run has trained further"
            self.status.value = message_html(f"results of run {name} were cleared: {why}", "warning")

    def clear(self) -> None:
        """Forget all results (not while a job runs)."""
        if self.jobs.busy:
            self.status.value = message_html("a job is running: cancel it before clearing", "warning")
            return
        with self._throttle.lock:
            self.store.clear()
            draw(self.figure, self.store)
        self.table.value = table_html([])
        self.progress.value = 0
        self.progress_label.value = ""
        self.status.value = ""

    def start(self, sweep: bool) -> bool:
        """Start a Run (or a size sweep) in the background; False when busy or when the setup is not usable."""
        if self.jobs.busy:
            self.status.value = message_html("a job is already running: wait for it or press Cancel", "warning")
            return False
        try:
            job = self._job(sweep)
        except Exception as exc:  # noqa: BLE001 - shown as a line (LearngeneError: no run, bad selection or setup)
            self.status.value = point_at_fixes(self.fields, exc) + message_html(one_line(exc), "error")
            return False
        point_at_fixes(self.fields, None)
        self._done = 0
        self._chart_error = ""
        self._notes = []
        self._latest = ""
        self.progress.value, self.progress.max = 0, max(job.estimate, 1)
        self.progress_label.value = ""
        self._set_busy(True)
        learngene = block_label(job.layers)
        what = (
            "size sweep: learngene, front inheritance and weight selection at 4 widths, each with its twin"
            if sweep
            else f"run: {job.estimate} target-task trainings"
        )
        if job.target_kind == plan.EPISODES:
            what += " (way, shot and tasks as the episodes hold them)"
        self.status.value = message_html(f"{what}, learngene {learngene}: preparing the target tasks...")
        way = [job.way]

        def listener(event: object) -> None:
            if isinstance(event, PlanReady):
                way[0] = event.way
                self._total = event.trainings
                self._throttle.request()
            elif isinstance(event, Note):
                self._notes.append(event.text.removeprefix("note: "))
                self.status.value = self._with_notes(message_html(f"{what}, learngene {learngene}..."))
            elif isinstance(event, TargetTaskFinished):
                size = plan.size_label(event.method, event.size)
                with self._throttle.lock:
                    series = self.store.add(
                        event.method, size, job.setup, event.params, event.tasks, event.accuracy, way[0], learngene
                    )
                    self._done += 1
                    self._latest = f"{series.method}{'' if size == plan.DEFAULT_SIZE else ' ' + size}"
                    self._latest += f", target task {len(series.accuracies)}/{event.tasks}"
                self._throttle.request()
            elif isinstance(event, MethodFinished):
                size = plan.size_label(event.row["method"], event.row.get("size", ""))
                with self._throttle.lock:
                    self.store.add_row(event.row, size, job.setup, way[0], learngene)
                self._throttle.request()

        def result(outcome: JobOutcome) -> dict:
            found = json.loads(Path(outcome.path).read_text())
            with self._throttle.lock:  # sweep points equal to a table row reuse it without training events
                self._add_found(found, job, way[0], rows=outcome.reused)
                if outcome.reused:  # found on disk by its key: its rows stood in for the training events
                    self._done = self._total = len(found["rows"]) * found["setup"]["tasks"]
            return found

        threads = shared_threads()
        self._runs_root = job.run.path.parent
        self.status.value = self._with_notes(
            message_html(f"{what}, learngene {learngene}, on {threads} core{'s' if threads > 1 else ''}...")
        )
        self._total = job.estimate
        return self.jobs.start(job.fewshot_job(threads), [listener], self._finished, result, self._queued)

    def _job(self, sweep: bool) -> plan.Job:
        """The panel's settings as a checked job; raises LearngeneError (no run, bad selection or setup)."""
        run, layers = self.context()
        folder = plan.resolve_target(self.data_root, self.target.value) if self.target.value else None
        return plan.prepare(
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

    def _add_found(self, found: dict, job: plan.Job, way: int | None, rows: bool = True) -> None:
        """Put a stored result's sweep points (and, with `rows`, its table rows) into the results."""
        learngene = block_label(job.layers)
        for point in found["sizes"]:
            self.store.add_row(point, point["size"], job.setup, way, learngene)
        if rows:
            for row in found["rows"]:
                self.store.add_row(row, plan.size_label(row["method"], ""), job.setup, way, learngene)

    def restore(self) -> int:
        """Show the results of this view's Run and Size sweep that the server already holds (a finished job is
        found by its key), without training anything; returns how many of the two were found."""
        if self.jobs.busy:
            return 0
        found = []
        for sweep in (False, True):
            try:
                job = self._job(sweep)
            except Exception:  # noqa: BLE001 - a view that cannot run has no results to bring back
                return 0
            stored = shared_store(job.run.path.parent).result(job.fewshot_job(shared_threads()))
            if stored is not None:
                with self._throttle.lock:
                    self._add_found(stored, job, stored["setup"].get("way", job.way))
                found.append("size sweep" if sweep else "run")
        if found:
            self._throttle.request()
            self._throttle.flush()
            self.status.value = message_html(
                f"results of this view's {' and '.join(found)} were found on the server: shown without training",
                "info",
            )
        return len(found)

    def _queued(self, ahead: int) -> None:
        """The shared engine is busy: say how many jobs are ahead of this one."""
        if self.jobs.busy and not self._done:
            self.progress_label.value = (
                f"<span style='color:#333'>&nbsp;waiting: {ahead} job{'s' if ahead > 1 else ''} of other visitors "
                "ahead of yours on the shared engine</span>"
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
        if self._latest:
            self.progress_label.value = (
                f"<span style='color:#333'>&nbsp;{self._done} of {self._total} trainings · last: "
                f"{html.escape(self._latest)}</span>"
            )
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
            self.status.value = point_at_fixes(self.fields, outcome.error) + message_html(outcome.message, "error")
        self.progress_label.value = ""
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.sweep_button.disabled = busy
        self.clear_button.disabled = busy
        self.cancel_button.disabled = not busy
