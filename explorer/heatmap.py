"""Criterion heatmap: layers x tasks (or x epochs), a log-scale tau, and the learngene layer selection."""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from core.collective.criterion import CriterionLog, EpochCriterion
from core.collective.histogram import BIN_EDGES
from core.errors import LearngeneError
from core.events import EpochEnded
from core.learngene.selection import (
    block_label,
    candidates,
    conv_layers,
    scores_of_matrix,
    select_top_k,
    threshold_layers,
    validate_block,
)
from explorer.fields import LogSlider, Slider, Toggle, Toggles, report_to
from explorer.heatmap_figure import MapState, clear, draw, new_figure
from explorer.style import heading, message_html


class CriterionHeatmap:
    """The heatmap with its controls; `set_log` shows a run's criterion, `observe` adds live epochs.

    The selection follows one rule at a time: "top-k" (the most stable window of `top_k` layers, as the
    command line's default), "threshold" (once the slider moves) or "manual" (once a layer button is clicked).
    """

    def __init__(self) -> None:
        self.log: CriterionLog | None = None
        self.expansion_tasks = 0
        self.top_k = 2
        self._live_tau = math.nan
        self._live = False
        self.rule = "top-k"
        self.selected: tuple[str, ...] = ()
        self.valid = False
        self.scores: np.ndarray = np.zeros(0)
        self._per_epoch: np.ndarray = np.zeros((0, 0, 0))  # at the slider's tau, computed once per move
        self._per_task: np.ndarray = np.zeros((0, 0))
        self._nearest: tuple[str, ...] = ()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._echoes: list[int] = []
        self.tau = LogSlider(
            value=1e-4,
            base=10,
            min=math.log10(BIN_EDGES[0]),
            max=math.log10(BIN_EDGES[-1]),
            step=0.1,
            description="τ (log)",
            readout_format=".2e",
            layout=widgets.Layout(width="380px"),
        )
        self.tau.add_class("lg-tau")
        self.absolute = Toggles(
            options=[("signed g > τ", False), ("absolute |g| > τ", True)], value=False, style={"button_width": "125px"}
        )
        self.view = Toggles(
            options=[("per task", "task"), ("per epoch", "epoch")], value="task", style={"button_width": "85px"}
        )
        self.threshold = Slider(
            value=0.05,
            min=0.0,
            max=0.5,
            step=0.0005,
            description="threshold",
            readout_format=".4f",
            layout=widgets.Layout(width="380px"),
        )
        self.threshold.add_class("lg-threshold")
        self.layer_buttons = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.selection_label = widgets.HTML()
        self.selection_label.add_class("lg-selection")
        self.message = widgets.HTML()
        self.message.add_class("lg-selection-message")
        report_to(self.message, tau=self.tau, counting=self.absolute, view=self.view, threshold=self.threshold)
        self.use_nearest = widgets.Button(
            description="use nearest valid block", layout=widgets.Layout(display="none", width="auto")
        )
        self.use_nearest.add_class("lg-use-nearest")
        self.figure = new_figure()
        self.tau.observe(self._tau_moved, "value")
        self.absolute.observe(lambda _: self.redraw(), "value")
        self.view.observe(lambda _: self._draw(), "value")
        self.threshold.observe(self._threshold_moved, "value")
        self.use_nearest.on_click(lambda _: self.choose(self._nearest))
        self.widget = widgets.VBox(
            [
                heading(
                    "2 · Learngene criterion",
                    "Each cell: the share of a layer's weight-gradient entries above τ during a task (its epochs "
                    "averaged). "
                    "Layers that stay low and steady once the network stops growing become the learngene (red frame).",
                ),
                widgets.HBox([self.tau, self.absolute, self.view]),
                self.figure.widget,
                widgets.HBox(
                    [
                        self.threshold,
                        widgets.HTML(
                            "<span style='color:#555'>&nbsp;conv layers scoring at most this are picked; or click "
                            "layers:</span>"
                        ),
                    ]
                ),
                self.layer_buttons,
                widgets.HBox([self.selection_label, self.use_nearest]),
                self.message,
            ]
        )

    # ------------------------------------------------------------ data in

    def set_log(
        self, log: CriterionLog | None, expansion_tasks: int = 0, tau: float | None = None, top_k: int = 2
    ) -> None:
        """Show a run's criterion (None clears the map) with the default rule (the best window of `top_k` layers)."""
        with self._lock:
            self.log = log
            self.expansion_tasks = expansion_tasks
            self.top_k = top_k
            self.rule = "top-k"
            self._live = False
        self._sync_buttons()
        if tau is not None or log is not None:
            self._tau_on_grid(tau if tau is not None else log.tau)
        self.redraw()

    def begin_live(self, log: CriterionLog | None, expansion_tasks: int, tau: float) -> None:
        """Prepare for live epochs recorded at `tau`, continuing `log` (a resumed run) or starting empty."""
        with self._lock:
            self.log = log
            self.expansion_tasks = expansion_tasks
            self._live_tau = tau
            self._live = True
            self.rule = "top-k" if self.rule == "threshold" else self.rule
        self._tau_on_grid(tau)
        self.redraw()

    def _tau_on_grid(self, tau: float) -> None:
        """Shift the slider's grid of log-steps so that `tau` (the run's recorded one) is exactly on it."""
        step = self.tau.step
        low, high = math.log10(BIN_EDGES[0]), math.log10(BIN_EDGES[-1])
        exponent = math.log10(tau)
        minimum = exponent - math.floor((exponent - low) / step + 1e-9) * step
        maximum = minimum + math.floor((high - minimum) / step + 1e-9) * step

        def change() -> None:
            self.tau.min, self.tau.max = minimum, maximum
            self.tau.value = tau

        self._silently(change)

    def _tau_moved(self, _change: object) -> None:
        if not self._syncing:  # code that sets tau redraws itself
            self.redraw()

    def observe(self, event: object) -> None:
        """Record a live EpochEnded event (called from the training thread; drawing happens in redraw).

        Ignored once another run is shown (set_log), so live epochs never land in a stored run's map.
        """
        if not isinstance(event, EpochEnded):
            return
        with self._lock:
            if not self._live:
                return
            names = tuple(event.layer_names)
            if self.log is None or self.log.layer_names != names or self.log.epochs != event.epochs:
                self.log = CriterionLog.empty(names, self._live_tau, event.epochs)
            no_norm = np.full(len(names), np.nan)
            self.log.record(
                event.task, event.epoch, EpochCriterion(names, event.signed, event.absolute, event.hist, no_norm, 0)
            )

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

    def _set_threshold(self, name: str, value: float) -> None:
        """Change the slider's max or value from code, remembering the values the browser may send back."""
        self._silently(lambda: setattr(self.threshold, name, value))
        self._echoes = (self._echoes + [self._step_index(self.threshold.value)])[-3:]

    def _step_index(self, value: float) -> int:
        return round(value / self.threshold.step)

    def _threshold_moved(self, change: dict) -> None:
        # Ignore our own changes, and the browser echoing values we set (it does so when max changes).
        if self._syncing or self._step_index(change["new"]) in self._echoes:
            return
        self._echoes = []
        self.rule = "threshold"
        self.redraw()

    def _toggled(self, _change: object) -> None:
        if self._syncing:
            return
        self.choose(tuple(b.description for b in self.layer_buttons.children if b.value))

    def use_threshold(self, value: float) -> None:
        """Switch to the threshold rule at `value` (as if the user had moved the slider there)."""
        with self._lock:
            self.rule = "threshold"
            self._set_threshold("max", max(self.threshold.max, self._on_step(value)))
            self._set_threshold("value", value)
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
        how = {"top-k": "most stable window", "threshold": "by threshold", "manual": "chosen by hand"}[self.rule]
        verdict = f" ({how})" if ok else " (not usable)"
        self.selection_label.value = f"<b>learngene layers:</b> {html.escape(block_label(self.selected))}{verdict}"

    @property
    def learngene(self) -> tuple[str, ...] | None:
        """The selected layers when the choice is valid, else None."""
        return self.selected if self.valid else None

    def table(self) -> list[dict]:
        """The per-task matrix at the current tau as long-format rows (for CSV export)."""
        with self._lock:
            if self.log is None:
                return []
            tau, absolute = self.tau.value, self.absolute.value
            matrix = self._per_task
            names, selected = self.log.layer_names, set(self.selected)
        return [
            {
                "task": t,
                "layer": name,
                "tau": tau,
                "absolute": absolute,
                "fraction": None if not np.isfinite(matrix[t, j]) else float(matrix[t, j]),
                "selected": name in selected,
            }
            for t in range(matrix.shape[0])
            for j, name in enumerate(names)
        ]

    # ------------------------------------------------------------ drawing

    def redraw(self) -> None:
        """Recompute the matrices and scores for the current tau, re-apply the rule (unless chosen by hand), draw."""
        with self._lock:
            log = self.log
            layer = None
            if log is None or not log.recorded.any():
                self.scores = np.zeros(0)
                self._per_epoch = self._per_task = np.zeros((0, 0))
            else:
                tau = float(self.tau.value)
                self._per_epoch = log.per_epoch(tau, absolute=self.absolute.value)
                self._per_task = log.task_means(self._per_epoch)
                try:
                    layer = scores_of_matrix(
                        self._per_task,
                        log.layer_names,
                        expansion_tasks=self.expansion_tasks,
                        tau=tau,
                        absolute=self.absolute.value,
                    )
                    self.scores = layer.score
                except LearngeneError:
                    self.scores = np.full(len(log.layer_names), np.nan)
            finite = self.scores[np.isfinite(self.scores)]
            top = self._on_step(max(float(finite.max()) * 1.1 if finite.size else 0.5, 0.001))
            self._set_threshold("max", top)
            if log is None:
                self._apply(())
                self.message.value = ""
                self.selection_label.value = ""
            else:
                self._apply(self._by_rule(layer))
            self._draw()

    def _by_rule(self, layer: object) -> tuple[str, ...]:
        """The layers the current rule picks (possibly an invalid set: the message explains it)."""
        if self.rule == "manual" or layer is None:
            return self.selected
        names = self.log.layer_names
        if self.rule == "threshold":
            return threshold_layers(layer, self.threshold.value)
        k = min(self.top_k, len(candidates(names)))
        if k == 0:
            return ()
        block = select_top_k(layer, k).layers
        level = max(layer.of(n)[0] for n in block)
        if np.isfinite(level):
            self._set_threshold("value", min(self._on_step(level), self.threshold.max))
        return block

    def _on_step(self, value: float) -> float:
        """`value` rounded up to the slider's step, so the browser keeps it as it is."""
        step = self.threshold.step
        return round(math.ceil(value / step - 1e-9) * step, 6)

    def _draw(self) -> None:
        with self._lock:
            if self.log is None or self.log.tasks == 0:
                clear(self.figure)
                return
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
                self.threshold.max,
            )
            draw(self.figure, state)
