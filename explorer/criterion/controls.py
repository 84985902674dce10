"""The map's toggles (criterion, counting, view, colour scale) and the selection threshold slider."""

from __future__ import annotations

import ipywidgets as widgets

from explorer.criterion.text import CRITERIA, CRITERION_TIPS
from explorer.widgets.fields import Slider, Toggles


def map_toggles() -> tuple[Toggles, Toggles, Toggles, Toggles]:
    """The criterion shown, signed or absolute counting, per task or per epoch, and the colour scale."""
    criterion = Toggles(options=CRITERIA, value="paper", tooltips=CRITERION_TIPS)
    criterion.add_class("lg-criterion")
    absolute = Toggles(
        options=[("signed g > τ", False), ("absolute |g| > τ", True)], value=False, style={"button_width": "125px"}
    )
    view = Toggles(options=[("per task", "task"), ("per epoch", "epoch")], value="task", style={"button_width": "85px"})
    colour_scale = Toggles(
        options=[("colours fit the values", "fit"), ("colours fixed 0 to 1", "fixed")],
        value="fit",
        tooltips=[
            "the colour scale stretches from 0 to the largest value shown (it changes as τ moves)",
            "the colour scale stays 0 to 1, so colours can be compared while τ moves",
        ],
        style={"button_width": "150px"},
    )
    colour_scale.add_class("lg-colour-scale")
    return criterion, absolute, view, colour_scale


def threshold_slider() -> Slider:
    """The selection threshold: the conv layers scoring at most this become the learngene."""
    threshold = Slider(
        value=0.05,
        min=0.0,
        max=1.0,
        step=0.0005,
        description="threshold",
        readout_format=".4f",
        layout=widgets.Layout(width="380px"),
    )
    threshold.add_class("lg-threshold")
    return threshold
