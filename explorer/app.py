"""The explorer app: run picker, the three panels, settings (JSON and link) and export, wired together."""

from __future__ import annotations

import functools
import html
import os
from pathlib import Path

import ipywidgets as widgets
from IPython.display import display

from core.collective.config import CollectiveConfig
from core.collective.health import health_rows
from core.collective.run_folders import list_runs, resolve_run, runs_root
from core.collective.runs import Run, open_run
from core.collective.transfer_runs import run_errors
from core.errors import LearngeneError
from core.learngene.selection import default_top_k
from explorer.collective.panel import CollectivePanel
from explorer.criterion.panel import CriterionHeatmap
from explorer.export.link import request_query
from explorer.export.panel import SettingsPanel
from explorer.individual.panel import IndividualPanel
from explorer.settings import RUN_ENV, Settings
from explorer.view import View
from explorer.welcome import INTRO, first_screen
from explorer.widgets.fields import Choice, report_to
from explorer.widgets.live_figure import LiveFigure
from explorer.widgets.outcome import one_line
from explorer.widgets.style import message_html


class ExplorerApp:
    """Everything on one page; `widget` is the root to display."""

    def __init__(self, root: Path | None = None, settings: Settings | None = None) -> None:
        self.root = root if root is not None else runs_root()
        self.run: Run | None = None
        self.view = View()
        self.heatmap = CriterionHeatmap(self.view)
        self.collective = CollectivePanel(
            self.root, self._training_started, self._trained, self.heatmap.observe, self.heatmap.redraw, self.view
        )
        self.individual = IndividualPanel(self._learngene_context, view=self.view)
        self.run_picker = Choice(description="run", layout=widgets.Layout(width="320px"))
        self.run_picker.add_class("lg-run-picker")
        self.refresh = widgets.Button(description="refresh list", icon="refresh", layout=widgets.Layout(width="auto"))
        self.run_info = widgets.HTML()
        self.message = widgets.HTML()
        self.message.add_class("lg-app-message")
        report_to(self.message, run=self.run_picker)
        self.welcome_button, self.more_options, self.welcome = first_screen(self.root)
        self._options_shown = False
        self._submitting = False  # the first screen's Train is handing its job to the engine
        self.share = SettingsPanel(self.apply_json, self.export)
        self.run_picker.observe(self._picked, "value")
        self.refresh.on_click(lambda _: self.refresh_runs())
        self.welcome_button.on_click(lambda _: self.train_from_welcome())
        self.more_options.on_click(lambda _: self.show_options())
        self.share.export_settings.on_click(lambda _: self.show_settings())
        self.run_picker.observe(lambda change: self.view.update(run=change["new"] or ""), "value")
        self.view.observe(lambda change: self.share.follow(change["new"]), "settings")
        self.run_row = widgets.HBox([self.run_picker, self.refresh, self.run_info])
        self.widget = widgets.VBox(
            [
                widgets.HTML(INTRO),
                self.run_row,
                self.message,
                self.welcome,
                self.collective.widget,
                self.heatmap.widget,
                self.individual.widget,
                self.share.widget,
            ],
            layout=widgets.Layout(max_width="1180px", padding="0 8px"),
        )
        self.widget.add_class("lg-app")
        self.live_name: str | None = None  # the run being trained, while the map follows it
        self._before_live: Settings | None = None
        self.refresh_runs()
        self.apply(settings or Settings())

    # ------------------------------------------------------------ runs

    def refresh_runs(self, select: str | None = None) -> None:
        """Re-read the runs root; keep (or set) the selected run."""
        names = list_runs(self.root)
        current = select if select is not None else self.run_picker.value
        self.run_picker.unobserve(self._picked, "value")
        self.run_picker.options = names
        self.run_picker.value = current if current in names else None
        self.run_picker.observe(self._picked, "value")
        self._update_welcome()

    def default_run(self) -> str | None:
        """$LEARNGENE_RUN if set, else the newest finished run, else the newest run."""
        env = os.environ.get(RUN_ENV, "")
        if env:
            return env
        names = list_runs(self.root)
        for name in names:
            try:
                if open_run(self.root / name).complete:
                    return name
            except LearngeneError:
                continue
        return names[0] if names else None

    def select_run(self, name: str | None, keep: bool = False) -> bool:
        """Show run `name` (under the runs root); an unusable name shows an inline message. Returns success.

        The user's view of the map (rule, selection, tau) stays when the run is the one shown, or when `keep` says
        the map already showed it (live, while it trained).
        """
        if not name:
            self._load(None)
            return True
        try:
            run = open_run(resolve_run(self.root, name))
        except LearngeneError as exc:
            self.message.value = message_html(one_line(exc), "error")
            return False
        self.message.value = ""
        if name not in self.run_picker.options:
            self.refresh_runs(select=name)
        else:
            self.run_picker.unobserve(self._picked, "value")
            self.run_picker.value = name
            self.run_picker.observe(self._picked, "value")
        self._load(run, keep)
        return True

    def _picked(self, change: dict) -> None:
        self.select_run(change["new"])

    def _load(self, run: Run | None, keep: bool = False) -> None:
        same = keep or (run is not None and self.run is not None and run.path == self.run.path)
        try:
            log = run.criterion() if run is not None and run.finished_tasks > 0 else None
            health = health_rows(run.metrics()) if log is not None else []
            self.collective.show_run(run)
        except LearngeneError as exc:
            self.message.value = message_html(one_line(exc), "error")
            run, log, health = None, None, []
        self.run = run
        if run is not None and log is not None:
            self.heatmap.set_log(
                log,
                run.config.expansion_tasks,
                tau=run.config.tau,
                top_k=default_top_k(run),
                health=health,
                keep=same,
                transfer=functools.partial(run_errors, run),
            )
        else:
            self.heatmap.set_log(None)
        self.individual.run_changed(run)
        self.run_info.value = _describe(run)
        self._update_welcome()

    def train_from_welcome(self) -> bool:
        """The first screen's one button: train the fast preset on glyphs.

        The panels show before the job is handed over: starting the engine can take seconds, and Cancel must be
        visible as soon as it is enabled."""
        self._submitting = True
        self._update_welcome()
        try:
            started = self.collective.train("fast", "glyphs")
        finally:
            self._submitting = False
        self._update_welcome()
        return started

    def show_options(self) -> None:
        """Show panel 1's dataset and preset choices on the first screen."""
        self._options_shown = True
        self._update_welcome()

    def _training_started(self, name: str, config: CollectiveConfig) -> None:
        """Training has begun its first task: the map follows it (a resumed run continues its committed criterion)."""
        self._before_live = self.current_settings()
        shown = self.run is not None and self.run.path.name == name and self.run.finished_tasks > 0
        log, health = (self.heatmap.log, self.heatmap.health) if shown else (None, [])
        if not shown:
            try:
                committed = open_run(self.root / name)
                if committed.finished_tasks > 0:
                    log, health = committed.criterion(), health_rows(committed.metrics())
            except LearngeneError:
                pass
        self.live_name = name
        self.refresh_runs(select=name)  # the run menu names the run that trains (the link too)
        self.heatmap.begin_live(log, config.expansion_tasks, config.tau, health, keep=shown)
        self.run_info.value = f"<span style='color:#555'>&nbsp;training {html.escape(name)}: the map follows it</span>"
        self.welcome_button.disabled = True
        self._update_welcome()

    def _trained(self, name: str, kept: bool) -> None:
        """After a training job: show the run it left on disk, or (nothing left) what the page showed before."""
        live, self.live_name = self.live_name, None
        self.welcome_button.disabled = False
        if kept:
            self.refresh_runs(select=name)
            self.select_run(name, keep=live == name)
        else:
            self.refresh_runs()
            if live is not None and self._before_live is not None:
                self.apply(self._before_live)
        self._update_welcome()

    @property
    def first_screen(self) -> bool:
        """No run with a finished task to show and nothing training: the page offers one thing to do."""
        if self._submitting or self.live_name is not None or self.collective.training:
            return False
        return not any(_has_tasks(self.root / name) for name in self.run_picker.options)

    def _update_welcome(self) -> None:
        first = self.first_screen
        self.welcome.layout.display = "" if first else "none"
        self.collective.controls.layout.display = "none" if first and not self._options_shown else ""
        self.more_options.layout.display = "none" if self._options_shown else ""
        for part in (self.heatmap.widget, self.individual.widget, self.share.widget):
            part.layout.display = "none" if first else ""
        self.run_row.layout.display = "none" if first and not self.run_picker.options else ""

    def _learngene_context(self) -> tuple[Run, tuple[str, ...]]:
        """The run and learngene layers the individual panel should use, or a LearngeneError saying what is missing."""
        if self.live_name is not None:
            raise LearngeneError(
                f"the collective model {self.live_name} is training: wait for it to finish (or press Cancel in panel "
                "1), then run the individual models on it"
            )
        if self.run is None or self.run.finished_tasks == 0:
            raise LearngeneError("no finished run is selected: pick one in the run menu or train one in panel 1")
        layers = self.heatmap.learngene
        if layers is None:
            raise LearngeneError(
                "the selected learngene layers are not usable: fix the selection in panel 2 (see its message)"
            )
        return self.run, layers

    # ------------------------------------------------------------ settings

    def current_settings(self) -> Settings:
        """The view as a Settings object (the panels keep it current as their users change them)."""
        return self.view.settings

    def apply(self, settings: Settings) -> bool:
        """Apply a validated Settings object to every control; returns whether the run could be shown.

        Results of the individual panel stay when the run stays the same; tau is kept exactly as given.
        """
        self.collective.dataset.value = settings.dataset
        self.collective.preset.value = settings.preset
        self.individual.apply(settings)
        ok = self.select_run(settings.run or self.default_run())
        self.heatmap.absolute.value = settings.absolute
        self.heatmap.view.value = settings.view
        self.heatmap.colour_scale.value = settings.colour_scale
        self.heatmap.criterion.value = settings.criterion
        if settings.tau is not None:
            self.heatmap.set_tau(settings.tau)
        elif self.run is not None and self.heatmap.log is not None:
            self.heatmap.set_tau(self.run.config.tau)
        if settings.threshold is not None:
            self.heatmap.use_threshold(settings.threshold)
        elif settings.layers:
            self.heatmap.choose(settings.layers)
        elif self.heatmap.log is not None:
            self.heatmap.use_default()
        self.show_settings()
        return ok

    def open_link(self, query: str) -> bool:
        """Apply a URL query (re-reading the runs first); a bad link leaves the default view and says why."""
        self.refresh_runs()
        try:
            settings = Settings.from_query(query)
        except LearngeneError as exc:
            self.message.value = message_html(f"link ignored: {one_line(exc)}", "error")
            return False
        if query.strip("?") or self.run is None:
            ok = self.apply(settings)
            self.individual.restore()
            return ok
        return True

    def apply_json(self, text: str) -> bool:
        """Apply settings JSON typed or pasted by the user; bad JSON or values give an inline message."""
        try:
            settings = Settings.from_json(text)
        except LearngeneError as exc:
            self.share.settings_message.value = message_html(one_line(exc), "error")
            return False
        self.share.settings_text.value = ""
        ok = self.apply(settings)
        self.share.settings_message.value = message_html(
            "settings applied" if ok else "settings applied, but the run could not be opened (see above)",
            "info" if ok else "warning",
        )
        return ok

    def show_settings(self) -> None:
        """Write the current settings into the settings box (discarding edits) and refresh the link."""
        self.share.reset(self.current_settings())

    # ------------------------------------------------------------ export

    def export(self) -> list[Path]:
        """Write figures (HTML) and tables (CSV) into the run's export folder; list them as download links."""
        if self.run is None:
            self.share.export_message.value = message_html(
                "no run is selected: pick a run first, exports go into its folder", "error"
            )
            return []
        figures = {name: figure.snapshot() for name, figure in self.figures().items()}
        tables = {"results": self.individual.store.rows(), "criterion": self.heatmap.table()}
        return self.share.export(self.run.path, self.current_settings(), figures, tables)

    def figures(self) -> dict[str, LiveFigure]:
        """The app's charts by export name."""
        return {
            "criterion": self.heatmap.figure,
            "criterion_scores": self.heatmap.scores_figure,
            "collective": self.collective.figure,
            "health": self.collective.health_figure,
            "accuracy_vs_size": self.individual.figure,
        }

    def display(self) -> None:
        """Display the app."""
        display(self.widget)

    def _ipython_display_(self) -> None:
        self.display()


def _has_tasks(path: Path) -> bool:
    try:
        return open_run(path).finished_tasks > 0
    except LearngeneError:
        return False


def _describe(run: Run | None) -> str:
    if run is None:
        return ""
    c = run.config
    state = "finished" if run.complete else f"{run.finished_tasks} of {c.tasks} tasks done"
    return (
        f"<span style='color:#555'>&nbsp;{html.escape(c.preset)} preset on {html.escape(c.dataset)}: {c.tasks} "
        f"tasks x {c.epochs} epochs, {state}</span>"
    )


def build(run_dir: str | os.PathLike | None = None, query: str | None = None) -> ExplorerApp:
    """An app for `run_dir` (any path, for a notebook user) or for the URL `query` (names under the runs root only).

    Without a query the app is built first and the page's query read afterwards, so that a pre-heated
    kernel does the slow first build before anyone asks for the page.
    """
    if run_dir is not None:
        path = Path(run_dir).expanduser().resolve()
        return ExplorerApp(path.parent, Settings(run=path.name))
    app = ExplorerApp()
    app.open_link(request_query() if query is None else query)
    return app


def show(run_dir: str | os.PathLike | None = None) -> None:
    """Display the explorer in a notebook cell or a Voila page (Voila's URL query sets the view)."""
    build(run_dir).display()
