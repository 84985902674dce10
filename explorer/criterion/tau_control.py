"""The criterion map's tau: a quarter-decade slider, a typed box for the full range, and the flat-map sentence."""

from __future__ import annotations

import math
import threading

import ipywidgets as widgets
import numpy as np
import traitlets

from core.learngene.selection import conv_layers
from core.names import clip
from explorer.settings import TAU_DIGITS, TAU_RANGE, significant
from explorer.widgets.fields import LogSlider, TextField, report_to
from explorer.widgets.style import message_html

SLIDER_EXPONENTS = (-6.0, -1.0)  # the useful range: 1e-6 to 1e-1
SLIDER_STEP = 0.25  # quarter decades: 1e-4, 1.78e-4, 3.16e-4, 5.62e-4, 1e-3, ...
# The map saturates when every conv layer's share is within this fraction of the ceiling (0.5 for signed counts, 1
# for absolute): tau is then below almost every gradient entry and the map counts signs, not stability. On the fast
# glyphs run (seed 0, tasks 5-39) the lowest conv layer's signed share is 0.489 at tau 1e-14, 0.484 at 1e-5, 0.438
# at 1e-4 and 0.057 at the paper's 3e-3; the layers' standard errors over tasks are 0.001-0.008 throughout.
SATURATED = 0.9
EMPTY = 1e-3  # a map whose every cell is below this share counts (almost) nothing


def tau_text(tau: float) -> str:
    """Tau as the page writes it: at most three significant digits (1e-09, 0.00316, 9.49)."""
    return f"{tau:.{TAU_DIGITS}g}"


class TauControl(traitlets.HasTraits):
    """Tau (`value`, three significant digits) shown by a 1e-6..1e-1 slider and a 1e-14..10 box (Enter applies it)."""

    value = traitlets.Float(1e-4)

    def __init__(self, value: float = 1e-4) -> None:
        super().__init__()
        self._local = threading.local()  # per thread, so that code moving tau never hides a user's move
        self.slider = LogSlider(
            value=value,
            base=10,
            min=SLIDER_EXPONENTS[0],
            max=SLIDER_EXPONENTS[1],
            step=SLIDER_STEP,
            description="τ",
            readout=False,
            layout=widgets.Layout(width="260px"),
        )
        self.slider.add_class("lg-tau")
        self.box = TextField(continuous_update=False, layout=widgets.Layout(width="100px"))
        self.box.add_class("lg-tau-box")
        self.message = widgets.HTML()
        self.message.add_class("lg-tau-message")
        report_to(self.message, tau=self.slider, tau_box=self.box)
        hint = widgets.HTML("<span style='color:#666;font-size:11px'>&nbsp;or type any τ from 1e-14 to 10</span>")
        self.widget = widgets.VBox([widgets.HBox([self.slider, self.box, hint]), self.message])
        self.slider.observe(self._slid, "value")
        self.box.observe(self._typed, "value")
        self.observe(self._show, "value")
        self.value = value
        self._show(None)

    @traitlets.validate("value")
    def _rounded(self, proposal: traitlets.Bunch) -> float:
        """Refuse a tau outside 1e-14..10 (code only: the box says why first); keep three significant digits."""
        tau = float(proposal["value"])
        if not (math.isfinite(tau) and TAU_RANGE[0] <= tau <= TAU_RANGE[1]):
            raise traitlets.TraitError(f"tau {tau!r} is outside 1e-14 to 10")
        return significant(tau)

    @property
    def _syncing(self) -> bool:
        """Whether this thread is moving the slider and box to tau (not a user's move)."""
        return getattr(self._local, "syncing", False)

    def _slid(self, change: dict) -> None:
        """A slider move sets tau."""
        if not self._syncing:
            self.message.value = ""
            self.value = change["new"]

    def _typed(self, change: dict) -> None:
        """A typed value in range sets tau; anything else keeps tau and says what to type."""
        if self._syncing:
            return
        text = change["new"].strip()
        tau = _number(text)
        if math.isfinite(tau) and TAU_RANGE[0] <= tau <= TAU_RANGE[1]:
            self.message.value = ""
            self.value = tau
            self._show(None)  # the box shows the rounded value even when tau did not change
            if significant(tau) != tau:
                self.message.value = message_html(
                    f"τ {clip(text)} is kept as {tau_text(self.value)}: τ has three significant digits", "info"
                )
            return
        problem = "is not a number" if math.isnan(tau) and text.lower() != "nan" else "is outside the range"
        self.box.report(
            f"τ: {clip(text)!r} {problem}: type a number from 1e-14 to 10, such as 1e-4 or 0.003; τ stays "
            f"{tau_text(self.value)}"
        )
        self._show(None)

    def _show(self, _change: object) -> None:
        """Put the slider at the quarter decade nearest to tau (its end when tau is outside) and tau in the box."""
        exponent = round(math.log10(self.value) / SLIDER_STEP) * SLIDER_STEP
        exponent = min(max(exponent, SLIDER_EXPONENTS[0]), SLIDER_EXPONENTS[1])
        self._local.syncing = True
        try:
            if not math.isclose(math.log10(self.slider.value), exponent, abs_tol=1e-9):
                self.slider.value = 10**exponent
            if _number(self.box.value) != self.value:  # a typed 1e-3 stays as typed
                self.box.value = tau_text(self.value)
        finally:
            self._local.syncing = False


def _number(text: str) -> float:
    """The number typed (NaN when it is not one)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def conv_scores(names: tuple[str, ...], scores: np.ndarray) -> np.ndarray:
    """The finite scores of the layers a learngene can hold (the conv layers)."""
    if len(scores) != len(names):
        return np.zeros(0)
    chosen = set(conv_layers(names))
    ranked = np.array([s for name, s in zip(names, scores) if name in chosen], dtype=float)
    return ranked[np.isfinite(ranked)]


def scores_tied(names: tuple[str, ...], scores: np.ndarray, absolute: bool = False) -> bool:
    """Whether the conv layers' scores are all about 0 or all near the map's ceiling: no window is more stable than
    another at this tau."""
    ranked = conv_scores(names, scores)
    if ranked.size < 2:
        return False
    return float(ranked.max()) < EMPTY or float(ranked.min()) >= SATURATED * (1.0 if absolute else 0.5)


def flat_map_note(
    names: tuple[str, ...], values: np.ndarray, scores: np.ndarray, tau: float, absolute: bool = False
) -> str:
    """Why the map at `tau` cannot tell the layers apart and which way to move tau (HTML); "" when it can."""
    finite = values[np.isfinite(values)]
    empty = finite.size > 0 and float(finite.max()) < EMPTY
    if finite.size == 0 or not (empty or scores_tied(names, scores, absolute)):
        return ""
    lower = empty or float(finite.mean()) < 0.25
    if empty:
        why = (
            "almost no weight-gradient entry is above τ: every cell and every score is about 0, so no layer can be "
            "told apart"
        )
    else:
        ranked = conv_scores(names, scores)
        span = f"the conv layers' scores all lie between {ranked.min():.3f} and {ranked.max():.3f}"
        if lower:
            why = f"{span}: few entries are above τ, so no window is more stable than another"
        else:
            counted = "every entry" if absolute else "the gradients' signs (a signed map tops out near 0.5)"
            why = (
                f"{span}, near the map's ceiling: τ is below almost every gradient entry, so the map counts {counted}, "
                "not how stable a layer is"
            )
    return (
        "<div class='lg-uniform-map' style='color:#8a5a00;max-width:1000px'><b>The map cannot tell the layers "
        f"apart.</b> At τ = {tau_text(tau)} {why}. Move τ {'lower' if lower else 'higher'} (the slider's range, 1e-6 "
        "to 1e-1, is where layers usually differ).</div>"
    )
