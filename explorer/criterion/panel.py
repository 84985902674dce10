"""Criterion heatmap: layers x tasks (or x epochs), a log-scale tau, and the learngene layer selection."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from core.collective.criterion import CriterionLog
from core.collective.health import unhealthy_tasks
from core.errors import LearngeneError
from core.events import EpochEnded, TaskFinished
from core.learngene.rules import rule_picks
from core.learngene.selection import block_label, conv_layers, scores_of_matrix, validate_block
from explorer.criterion.controls import map_toggles, threshold_slider
from explorer.criterion.data import OpenWorldErrors, ShownTails, with_epoch, with_task_health
from explorer.criterion.figure import MapState, clear, draw, new_figure, new_scores_figure, side_by_side
from explorer.criterion.table import map_rows
from explorer.criterion.tau_control import TauControl, flat_map_note, scores_tied
from explorer.criterion.text import EXPLANATION, INTRO, PLACEHOLDER, THRESHOLD_HINT, selection_caption
from explorer.view import View
from explorer.widgets.fields import Toggle, report_to
from explorer.widgets.style import heading, message_html


class CriterionHeatmap:
    """The heatmap with its controls; `set_log` shows a run's criterion, `observe` adds live epochs and health.

    The selection follows one rule at a time: "top-k" (the most stable window of `top_k` layers, as the
    command line's default), "threshold" (once the user moves the slider) or "manual" (once a layer button is
    clicked). Only the user changes the rule: code never moves the threshold slider except to apply settings.
    """

    def __init__(self, view: View | None = None) -> None:
        self.view_model = view if view is not None else View()
        self.log: CriterionLog | None = None
        self.expansion_tasks = 0
        self.top_k = 2
        self._live_tau = math.nan
        self._live = False
        self.rule = "top-k"
        self.selected: tuple[str, ...] = ()
        self.valid = False
        self.scores: np.ndarray = np.zeros(0)
        self.health: list[dict] = []
        self._per_epoch: np.ndarray = np.zeros((0, 0, 0))  # at the slider's tau, computed once per move
        self._per_task: np.ndarray = np.zeros((0, 0))
        self._nearest: tuple[str, ...] = ()
        self._transfer = OpenWorldErrors()
        self._tails = ShownTails()
        self._lock = threading.RLock()
        self._local = threading.local()
        self.tau = TauControl(1e-4)
        self.criterion, self.absolute, self.view, self.colour_scale = map_toggles()
        self.threshold = threshold_slider()
        self.layer_buttons = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.selection_label = widgets.HTML()
        self.selection_label.add_class("lg-selection")
        self.message = widgets.HTML()
        self.message.add_class("lg-selection-message")
        report_to(
            self.message,
            counting=self.absolute,
            criterion=self.criterion,
            view=self.view,
            colour_scale=self.colour_scale,
            threshold=self.threshold,
        )
        self.use_nearest = widgets.Button(
            description="use nearest valid block", layout=widgets.Layout(display="none", width="auto")
        )
        self.use_nearest.add_class("lg-use-nearest")
        self.flat_note = widgets.HTML()
        self.flat_note.add_class("lg-flat-note")
        self.figure = new_figure()
        self.scores_figure = new_scores_figure()
        self.tau.observe(self._tau_moved, "value")
        self.absolute.observe(lambda _: self.redraw(), "value")
        self.criterion.observe(lambda _: self.redraw(), "value")
        self.view.observe(lambda _: self._draw(), "value")
        self.colour_scale.observe(lambda _: self._draw(), "value")
        self.threshold.observe(self._threshold_moved, "value")
        self.use_nearest.on_click(lambda _: self.choose(self._nearest))
        self.widget = widgets.VBox(
            [
                heading("2 · Learngene criterion", INTRO),
                self.criterion,
                widgets.HBox([self.tau.widget, self.absolute, self.view]),
                self.colour_scale,
                self.flat_note,
                side_by_side(self.figure, self.scores_figure),
                widgets.HTML(EXPLANATION),
                widgets.HBox([self.threshold, widgets.HTML(THRESHOLD_HINT)]),
                self.layer_buttons,
                widgets.HBox([self.selection_label, self.use_nearest]),
                self.message,
            ]
        )
        self.widget.add_class("lg-panel-criterion")
        self.figure.placeholder(PLACEHOLDER)
        self.scores_figure.hide(True)
        self._report()

    # ------------------------------------------------------------ data in

    def set_log(
        self,
        log: CriterionLog | None,
        expansion_tasks: int = 0,
        tau: float | None = None,
        top_k: int = 2,
        health: list[dict] | None = None,
        keep: bool = False,
        transfer: Callable[[], np.ndarray] | None = None,
    ) -> None:
        """Show a run's criterion (None clears the map) and its health rows.

        A new run starts from its default rule (the best window of `top_k` layers) and its recorded tau; `keep`
        (the same run shown again) keeps the user's rule, selection and tau. `transfer` gives the run's (tasks,
        layers) open-world errors, called once when the transfer criterion is first shown.
        """
        with self._lock:
            self.log = log
            self._transfer = OpenWorldErrors(transfer)
            self.expansion_tasks = expansion_tasks
            self.top_k = top_k
            self.health = list(health or [])
            self._live = False
            if not keep:
                self.rule = "top-k"
        self._sync_buttons()
        if not keep and (tau is not None or log is not None):
            self._put_tau(tau if tau is not None else log.tau)
        self.redraw()

    def begin_live(
        self,
        log: CriterionLog | None,
        expansion_tasks: int,
        tau: float,
        health: list[dict] | None = None,
        keep: bool = False,
    ) -> None:
        """Prepare for live epochs recorded at `tau`, continuing `log` (the finished tasks of a run being resumed)
        or starting empty. `keep` (the run shown is the one that trains) keeps the user's rule and tau; otherwise
        the run starts from its default rule at its recorded tau."""
        with self._lock:
            self.log = log
            self.expansion_tasks = expansion_tasks
            self.health = list(health or [])
            self._live_tau = tau
            self._live = True
            self._transfer = OpenWorldErrors()
            if not keep:
                self.rule = "top-k"
        self._sync_buttons()
        if not keep:
            self._put_tau(tau)
        self.redraw()

    def set_tau(self, tau: float) -> None:
        """Show the map at `tau` (from a link or settings; kept to three significant digits)."""
        self._put_tau(tau)
        self.redraw()

    def _put_tau(self, tau: float) -> None:
        """Set tau without the redraw that a user's move triggers (the caller redraws)."""
        self._silently(lambda: setattr(self.tau, "value", tau))

    def _tau_moved(self, _change: object) -> None:
        if not self._syncing:  # code that sets tau redraws itself
            self.redraw(in_place=True)

    @property
    def unhealthy(self) -> tuple[bool, ...]:
        """Per task of the map, whether the network was unhealthy there (core's rule); () without health records."""
        with self._lock:
            return tuple(unhealthy_tasks(self.health))

    def observe(self, event: object) -> None:
        """Record a live EpochEnded or TaskFinished event (from the training thread; redraw draws them); ignored once
        another run is shown (set_log), so live epochs never land in a stored run's map."""
        if not isinstance(event, (EpochEnded, TaskFinished)):
            return
        with self._lock:
            if not self._live:
                return
            if isinstance(event, TaskFinished):
                self.health = with_task_health(self.health, event)
            else:
                self.log = with_epoch(self.log, event, self._live_tau)

    def _sync_buttons(self) -> None:
        """One toggle per conv layer."""
        names = conv_layers(self.log.layer_names) if self.log is not None else ()
        if tuple(b.description for b in self.layer_buttons.children) == names:
            return
        buttons = []
        for name in names:
            button = Toggle(value=False, description=name, layout=widgets.Layout(width="72px"))
            button.add_class(f"lg-layer-{name}")
            button.observe(self._toggled, "value")
            report_to(self.message, **{name: button})
            buttons.append(button)
        self.layer_buttons.children = buttons

    # ------------------------------------------------------------ selection

    def _silently(self, change: Callable[[], None]) -> None:
        """Change controls without their observers re-deciding the rule (per thread: a user's move is never lost)."""
        self._local.syncing = True
        try:
            change()
        finally:
            self._local.syncing = False

    @property
    def _syncing(self) -> bool:
        return getattr(self._local, "syncing", False)

    def _threshold_moved(self, _change: object) -> None:
        if self._syncing:  # code that applies settings sets the rule itself
            return
        self.rule = "threshold"
        self.redraw()

    def _toggled(self, _change: object) -> None:
        if self._syncing:
            return
        self.choose(tuple(b.description for b in self.layer_buttons.children if b.value))

    def use_threshold(self, value: float) -> None:
        """Switch to the threshold rule at `value` (settings or a link asked for it)."""
        with self._lock:
            self.rule = "threshold"
            self._silently(lambda: setattr(self.threshold, "value", value))
            self.redraw()

    def use_default(self) -> None:
        """Switch back to the default rule: the most stable window (settings or a link without a choice)."""
        with self._lock:
            self.rule = "top-k"
            self.redraw()

    def choose(self, layers: tuple[str, ...]) -> None:
        """Select layers by hand (checked by core; an invalid choice shows why and the nearest valid block)."""
        with self._lock:
            self.rule = "manual"
            self._apply(tuple(layers))
            self._draw()

    def _apply(self, layers: tuple[str, ...]) -> None:
        """Set the selection, sync the toggles, and show core's verdict on it."""
        with self._lock:
            names = self.log.layer_names if self.log is not None else ()
            ok, reason, block = (
                validate_block(names, layers) if names else (False, "no run is shown: pick or train a run first", ())
            )
            self.selected, self.valid = (block, True) if ok else (layers, False)
            self._nearest = () if ok else block
        chosen = set(self.selected)
        self._sync_buttons()
        self._silently(lambda: [setattr(b, "value", b.description in chosen) for b in self.layer_buttons.children])
        self.message.value = "" if ok else message_html(reason, "error")
        if not ok and self._nearest:
            self.use_nearest.description = f"use {block_label(self._nearest)}"
            self.use_nearest.layout.display = ""
        else:
            self.use_nearest.layout.display = "none"
        tied = self.rule == "top-k" and scores_tied(names, self.scores, self.absolute.value)
        self.selection_label.value = selection_caption(self.selected, ok, self.rule, self.criterion.value, tied)

    @property
    def learngene(self) -> tuple[str, ...] | None:
        """The selected layers when the choice is valid, else None."""
        return self.selected if self.valid else None

    def table(self) -> list[dict]:
        """The per-task matrix shown (at the current tau, or the open-world errors) as long-format rows (CSV export)."""
        with self._lock:
            if self.log is None:
                return []
            return map_rows(
                self.log.layer_names,
                self._per_task,
                self.tau.value,
                self.absolute.value,
                self.criterion.value,
                self.selected,
            )

    # ------------------------------------------------------------ drawing

    def redraw(self, in_place: bool = False) -> None:
        """Recompute the map and scores at the current tau, re-apply the rule (unless chosen by hand), and draw."""
        with self._lock:
            log = self.log
            layer = None
            if log is None or not log.recorded.any():
                self.scores = np.zeros(0)
                self._per_epoch = self._per_task = np.zeros((0, 0))
                self.flat_note.value = ""
            else:
                tau, transfer = float(self.tau.value), self.criterion.value == "transfer"
                if transfer:
                    self._per_task = self._transfer.matrix(log.tasks, len(log.layer_names))
                    self._per_epoch = self._per_task[:, None, :]
                else:
                    absolute = self.absolute.value
                    self._per_epoch = log.per_epoch(tau, absolute=absolute, tail=self._tails.of(log, absolute))
                    self._per_task = log.task_means(self._per_epoch)
                try:
                    layer = scores_of_matrix(
                        self._per_task,
                        log.layer_names,
                        expansion_tasks=self.expansion_tasks,
                        tau=0.0 if transfer else tau,
                        absolute=self.absolute.value and not transfer,
                        criterion=self.criterion.value,
                    )
                    self.scores = layer.score
                except LearngeneError:
                    self.scores = np.full(len(log.layer_names), np.nan)
                self.flat_note.value = (
                    self._transfer.note
                    if transfer
                    else flat_map_note(log.layer_names, self._per_task, self.scores, tau, self.absolute.value)
                )
            if log is None:
                self.selected, self.valid = (), False
                self._sync_buttons()
                self.message.value = ""
                self.selection_label.value = ""
                self.use_nearest.layout.display = "none"
            else:
                self._apply(
                    self.selected
                    if layer is None
                    else rule_picks(
                        layer, self.rule, top_k=self.top_k, threshold=self.threshold.value, chosen=self.selected
                    )
                )
            self._draw(in_place)

    def _report(self) -> None:
        """Write what the map shows and how it selects into the view (threshold and layers only under their rule)."""
        self.view_model.update(
            tau=float(self.tau.value),
            absolute=bool(self.absolute.value),
            view=self.view.value,
            colour_scale=self.colour_scale.value,
            criterion=self.criterion.value,
            threshold=float(self.threshold.value) if self.rule == "threshold" else None,
            layers=tuple(self.selected) if self.rule == "manual" else (),
        )

    def _draw(self, in_place: bool = False) -> None:
        """Draw the map, then write the view (the chart is what the user waits for; the link can follow it)."""
        self._paint(in_place)
        self._report()

    def _paint(self, in_place: bool) -> None:
        with self._lock:
            if self.log is None or self.log.tasks == 0:
                clear(self.figure, self.scores_figure)
                self.figure.placeholder(PLACEHOLDER)
                self.scores_figure.hide(True)
                return
            self.figure.placeholder(None)
            self.scores_figure.hide(False)
            state = MapState(
                self.log.layer_names,
                self._per_task,
                self._per_epoch,
                float(self.tau.value),
                self.absolute.value,
                self.view.value,
                self.scores,
                self.selected,
                self.valid,
                self.threshold.value,
                show_threshold=self.rule == "threshold",
                expansion_tasks=self.expansion_tasks,
                unhealthy=self.unhealthy,
                colour_scale=self.colour_scale.value,
                criterion=self.criterion.value,
            )
            draw(self.figure, self.scores_figure, state, in_place)
