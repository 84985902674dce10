"""The criterion map's texts: how to read it, what shows before a run, the criteria it can show, the selection line."""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.learngene.selection import block_label

EXPLANATION = (
    "<div class='lg-heatmap-help' style='color:#444;max-width:1000px;font-size:12px;line-height:1.5'>"
    "<b>Reading the map.</b> Rows are layers, columns source tasks (or their epochs). <b>Score bars</b> (right): a "
    "layer's mean share over the tasks after growth ends (the dotted white line); lower means a more stable layer. "
    "Red bars and the red frame are the learngene layers. The <b>dashed line</b> is the threshold: it appears once "
    "you move the threshold slider, and then every conv layer whose bar ends at or left of it is picked. "
    "<b>fc layers</b> (the last rows) are shown for comparison but cannot be chosen: they are the collective "
    "model's classifier, and a learngene is a block of conv layers that a new small network is built around. "
    "<b>Grey columns</b>: tasks where the network was unhealthy (training accuracy below 0.5, or its features "
    "collapsed to under a quarter of the first task's rank; see the health chart in panel 1). A network that has "
    "stopped learning has small gradients everywhere, so do not read those columns as stability.</div>"
)
PLACEHOLDER = (
    "The criterion map appears here once a run has finished its first source task: pick a run above, or train one "
    "in panel 1 and watch the map fill in."
)
CRITERIA = (("gradient (paper)", "paper"), ("open-world transfer", "transfer"))
CRITERION_TIPS = (
    "the paper's criterion: the share of a layer's weight-gradient entries above τ; lower = more stable",
    "each layer's nearest-centroid error on open-world classes the source stream never trains on (5-way 1-shot "
    "episodes of its pooled features); lower = features that transfer better; τ does not apply",
)
LIVE_TRANSFER = (
    "The open-world transfer criterion of a run in training shows once its training ends (or when it is picked "
    "again): switch to the gradient criterion to watch it live."
)
INTRO = (
    "Each cell: the share of a layer's weight-gradient entries above τ during a task (its epochs averaged). Layers "
    "that stay low and steady once the network stops growing become the learngene (red frame)."
)
THRESHOLD_HINT = (
    "<span style='color:#555'>&nbsp;move it to pick the conv layers scoring at most this; or click layers:</span>"
)


def selection_caption(layers: Sequence[str], usable: bool, rule: str, criterion: str, tied: bool) -> str:
    """The line under the map: the learngene layers and the rule that chose them (or that they are not usable)."""
    best = "most stable window" if criterion == "paper" else "window of lowest open-world error"
    how = {"top-k": best, "threshold": "by threshold", "manual": "chosen by hand"}[rule]
    if tied:
        how = "scores tied at this τ, so not a most stable window"
    verdict = f" ({how})" if usable else " (not usable)"
    return f"<b>learngene layers:</b> {html.escape(block_label(layers))}{verdict}"
