"""The page's title, and the first screen: one button that trains the fast preset when no run exists yet."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets

# Measured from this page on a 2-core machine (docs/explorer.md): the fast preset on glyphs, 40 tasks.
# Measured with benchmarks/bench_page_training.py --tasks 0 (the whole fast run from this page, idle 2-core machine).
FAST_ESTIMATE = "about {idle} when the machine is idle, longer when other programs keep it busy"

INTRO = (
    "<h2 style='margin:4px 0'>Learngene Explorer</h2>"
    "<div style='color:#444;max-width:980px'>Learngene (Wang et al., AAAI 2022): a <i>collective</i> network learns "
    "many small tasks in turn; a gradient criterion finds the layers that stop changing; those layers (the "
    "<i>learngene</i>) start small <i>individual</i> networks that learn new classes from a few images.</div>"
)


def first_screen(root: Path) -> tuple[widgets.Button, widgets.Button, widgets.VBox]:
    """The train button, the "other datasets and presets" button, and the screen holding them (hidden at first)."""
    train = widgets.Button(
        description="Train the collective model (fast preset, glyphs)",
        button_style="success",
        icon="play",
        layout=widgets.Layout(width="380px", height="40px"),
    )
    train.add_class("lg-welcome-train")
    more = widgets.Button(
        description="other datasets and presets", layout=widgets.Layout(width="auto"), button_style=""
    )
    more.add_class("lg-more-options")
    screen = widgets.VBox(
        [
            widgets.HTML(
                "<div class='lg-welcome' style='background:#eef6ee;padding:10px 12px;border-radius:4px;"
                "max-width:980px;line-height:1.5'><b>Start here.</b> There is no trained run under "
                f"<code>{html.escape(str(root))}</code> yet, and every chart of this page is computed from "
                "one. Step one is the <i>collective model</i>: press the button to train the <b>fast</b> preset "
                "(40 small tasks of the built-in glyphs, offline). Measured from this page on a 2-core machine: "
                f"{FAST_ESTIMATE.format(idle='3 min')}; the page shows the time left, and the "
                "charts fill in while it trains. The criterion map, the individual models and export follow "
                "once the first tasks are done.</div>"
            ),
            widgets.HBox([train, more], layout=widgets.Layout(align_items="center")),
        ],
        layout=widgets.Layout(display="none"),
    )
    return train, more, screen
