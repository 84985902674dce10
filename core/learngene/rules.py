"""The selection rules as one choice, for a page that shows a pick before it is checked (and why it is unusable)."""

from __future__ import annotations

from collections.abc import Sequence

from core.learngene.selection import LayerScores, candidates, select_top_k, threshold_layers

RULES = ("top-k", "threshold", "manual")


def rule_picks(
    scores: LayerScores, rule: str, *, top_k: int = 2, threshold: float = 0.0, chosen: Sequence[str] = ()
) -> tuple[str, ...]:
    """The layers one selection rule picks, valid or not, so that a page can show why a pick is unusable: "top-k"
    (the best window of `top_k`, fewer when the network has fewer candidates), "threshold" (the conv layers scoring
    at most `threshold`) or "manual" (`chosen`, as given)."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}: one of {', '.join(RULES)}")
    if rule == "manual":
        return tuple(chosen)
    if rule == "threshold":
        return threshold_layers(scores, threshold)
    k = min(top_k, len(candidates(scores.layer_names)))
    return select_top_k(scores, k).layers if k > 0 else ()
