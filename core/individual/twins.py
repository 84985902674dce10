"""Twins: the size sweep pairs every point with scratch of exactly its own architecture.

A point's twin is the same network (same widths, same head widths) from random weights, trained with scratch's
recipe on the same target tasks with the same per-task seeds, so the difference is paired task by task. The
learngene and front-inheritance points have the individual model's architecture as twin; weight selection and the
collective model fine-tuned have the collective's architecture at their width. Twin rows are named
"scratch (<strategy>)"; points of one architecture share one trained twin.
"""

from __future__ import annotations

from core.stats import paired_difference

TWIN_PHRASE = "every point is compared with scratch of its own architecture"
PAIRING = "twin"  # the size sweep's pairing, part of a few-shot job's key (before: scratch of the same multiplier)
PREFIX, SUFFIX = "scratch (", ")"


def twin_name(strategy: str) -> str:
    """The row name of a strategy's twin: "front inheritance" -> "scratch (front inheritance)"."""
    return f"{PREFIX}{strategy}{SUFFIX}"


def is_twin(method: str) -> bool:
    """Whether a row is a twin ("scratch (learngene)"), not a strategy's point."""
    return method.startswith(PREFIX) and method.endswith(SUFFIX)


def twin_strategy(method: str) -> str:
    """The strategy a twin row belongs to: "scratch (learngene)" -> "learngene"."""
    return method[len(PREFIX) : -len(SUFFIX)]


def pair_with_twin(point: dict, twin: dict) -> None:
    """Give a point its twin's name, size and accuracy, and the paired difference to it (mean, 95% CI, p-value)."""
    point["twin"] = twin["method"]
    point["twin_params"] = twin["params"]
    point["twin_mean_accuracy"] = twin["mean_accuracy"]
    point["vs_twin"] = paired_difference(point["task_accuracies"], twin["task_accuracies"]).as_dict()
