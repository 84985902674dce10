"""The app's input widgets, hardened: any browser message leaves a valid value and, if refused or changed, one line."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import ipywidgets as widgets
from traitlets import TraitError

from core.errors import LearngeneError, Setting
from core.names import clip
from explorer.widgets.style import message_html

MAX_TEXT = 100_000  # characters; settings JSON is about 400
Report = Callable[[str], None]


class Guarded:
    """Mixin for ipywidgets inputs: `set_state` (the path of every browser message) never raises.

    A value of the wrong type, a non-finite number or an over-long text keeps the last valid value, which
    is sent back to the browser; a number outside the field's range is clamped. Either way `report` gets
    one line for the user. Without this, a refused message ends in a traceback in the kernel log while
    the browser keeps showing the value the kernel did not take.
    """

    report: Report | None = None
    field_name = "field"

    def set_state(self, sync_data: dict) -> None:
        """Apply a browser message, or keep the current value and say why not."""
        key = next((k for k in ("value", "index") if k in sync_data), None)
        sent = sync_data.get(key)
        problem = self.refuse(key, sent) if key else None
        if problem is None:
            try:
                super().set_state(sync_data)
            except (TraitError, TypeError, ValueError) as exc:
                problem = _expected(exc)
        if problem is not None:
            self.send_state()
            self._say(f"{_short(sent)} was not accepted ({problem}); it stays {_short(self.value)}")
        elif key == "value" and hasattr(self, "max") and _is_number(sent):
            low, high = self.limits()
            if not low <= sent <= high:
                self._say(f"{_short(sent)} is outside {low:g} to {high:g}; set to {_short(self.value)}")

    def refuse(self, key: str, value: object) -> str | None:
        """Why a sent value (or index) cannot be used at all; None when it may be tried."""
        if isinstance(value, bool) and (key == "index" or not isinstance(self.value, bool)):
            return "a yes/no value where a number or text belongs"
        if isinstance(value, str) and hasattr(self, "max"):
            return "text where a number belongs"
        if value is None and getattr(self, "options", None):
            return "nothing chosen"
        return _unusable(value)

    def limits(self) -> tuple[float, float]:
        """The smallest and largest value the field takes."""
        return self.min, self.max

    def _say(self, text: str) -> None:
        if self.report is not None:
            self.report(f"{self.field_name}: {text}")


class IntField(Guarded, widgets.BoundedIntText):
    """A whole number within min..max."""

    def refuse(self, key: str, value: object) -> str | None:
        """Also refuse fractions, which the int trait would silently truncate."""
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            return "not a whole number"
        return super().refuse(key, value)


class LogSlider(Guarded, widgets.FloatLogSlider):
    """A log-scale slider (its min and max are exponents).

    The browser computes values as base ** exponent, so it can send back the kernel's own value with a rounding
    error (0.003000000000000001 for 0.003); such an echo is not a move, and the exact value is kept.
    """

    def set_state(self, sync_data: dict) -> None:
        """Apply a browser message, except an echo of the current value that differs only by rounding."""
        sent = sync_data.get("value")
        if _is_number(sent) and math.isfinite(sent) and math.isclose(sent, self.value, rel_tol=1e-9, abs_tol=0):
            sync_data = {k: v for k, v in sync_data.items() if k != "value"}
            if not sync_data:
                return
        super().set_state(sync_data)

    def limits(self) -> tuple[float, float]:
        """The smallest and largest value (not exponent) the slider takes."""
        return self.base**self.min, self.base**self.max


class Slider(Guarded, widgets.FloatSlider):
    """A float slider."""


class TextField(Guarded, widgets.Text):
    """One line of text."""


class TextArea(Guarded, widgets.Textarea):
    """A text box."""


class Choice(Guarded, widgets.Dropdown):
    """A drop-down menu."""


class Toggles(Guarded, widgets.ToggleButtons):
    """A row of exclusive buttons."""


class Check(Guarded, widgets.Checkbox):
    """A checkbox."""


class Toggle(Guarded, widgets.ToggleButton):
    """One on/off button."""


def report_to(target: widgets.HTML, **fields: Guarded) -> None:
    """Show the fields' refusal lines, each starting with its keyword name, as an inline error in `target`."""

    def show(text: str) -> None:
        target.value = message_html(text, "error")

    for name, field in fields.items():
        field.field_name = name.replace("_", " ")
        field.report = show


def _unusable(value: object) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"longer than {MAX_TEXT:,} characters"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expected(exc: Exception) -> str:
    """The useful part of a traitlets message, e.g. "expected an int, not the str 'abc'"."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    start = text.find("expected")
    return clip(text[start:].rstrip(".") if start >= 0 else text, 120)


def _short(value: object) -> str:
    return clip(repr(value))


FIX_CLASS = "lg-fix"
# Outlines the fields an error names (shown with the error's line, so the outline goes when the line does).
FIX_STYLE = "<style>.lg-fix input, .lg-fix select, .lg-fix .widget-toggle-buttons{outline:2px solid #c62828}</style>"


def point_at_fixes(fields: Mapping[str, widgets.DOMWidget], exc: BaseException | None) -> str:
    """Outline the fields (by setting id) that `exc` names as what fixes it, and only those; None clears every
    outline. Returns the style to show beside the error's line ("" when no field is outlined)."""
    named = {p.id for p in exc.fixes if isinstance(p, Setting)} if isinstance(exc, LearngeneError) else set()
    for setting, field in fields.items():
        if setting not in named:
            field.remove_class(FIX_CLASS)
        elif FIX_CLASS not in field._dom_classes:
            field.add_class(FIX_CLASS)
            _unmark_on_change(field)
    return FIX_STYLE if named & set(fields) else ""


def _unmark_on_change(field: widgets.DOMWidget) -> None:
    """Remove the field's outline when the user changes it (once)."""

    def unmark(_change: object) -> None:
        field.remove_class(FIX_CLASS)
        field.unobserve(unmark, "value")

    field.observe(unmark, "value")
