"""Checks for the exercises of tutorial 04 (your own data), computed from the student's own images, runs and
timings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from core.collective.config import CollectiveConfig
from core.data.imageset import ImageSet
from core.tutorial.verdict import Verdict, check_direction, correct, first_unanswered, method_row, wrong

STYLES = ("filled", "outline")
BEATS = {"higher": "yes", "lower": "no", "cannot tell": "cannot tell"}


def sibling(name: str) -> str | None:
    """The same shape in the other style ('5-star-filled' -> '5-star-outline'); None for classes with one style."""
    head, _, style = name.rpartition("-")
    return f"{head}-{STYLES[1 - STYLES.index(style)]}" if style in STYLES else None


def exercise_4_1(siblings: int | None, config: CollectiveConfig, images: ImageSet) -> Verdict:
    """Ex. 1: how many novel classes have their sibling among the classes the collective model learnt from."""
    if (missing := first_unanswered(siblings=siblings)) is not None:
        return missing
    division = config.division(images.class_names)
    seen = {images.class_names[c] for c in (*division.source, *division.open_world)}
    novel = [images.class_names[c] for c in division.novel]
    expected = sum(sibling(name) in seen for name in novel)
    if int(siblings) == expected:
        return correct(f"{expected} of the {len(novel)} novel classes have a sibling the collective model saw")
    if int(siblings) > expected:
        return wrong("too many: a sibling only counts if it is a source or open-world class, and dots have none")
    return wrong("too few: check every novel class's other style against the source and open-world classes")


def growth_share(t_first: float, t_final: float, tasks: int, growth: int) -> float:
    """Share of the estimated collective time spent in the growth phase (step time linear over it)."""
    grow = growth * (t_first + t_final) / 2
    return grow / (grow + (tasks - growth) * t_final)


def exercise_4_3(
    share: float | None, hours_10: float | None, seconds: float, t_first: float, t_final: float, paper: CollectiveConfig
) -> Verdict:
    """Ex. 3: the growth phase's share of the estimate, and the hours the --epochs 10 override leaves."""
    if (missing := first_unanswered(share=share, hours_10=hours_10)) is not None:
        return missing
    if not 0 <= share <= 1:
        return wrong("give the share as a fraction between 0 and 1")
    expected = growth_share(t_first, t_final, paper.tasks, paper.expansion_tasks)
    if not math.isclose(share, expected, rel_tol=0.02, abs_tol=0.005):
        if math.isclose(share, paper.expansion_tasks / paper.tasks, rel_tol=0.02):
            return wrong("that is the growth phase's share of the tasks; its steps are cheaper (narrower network)")
        return wrong("not the share of your estimate: the growth phase's time over the whole estimate's")
    if not math.isclose(hours_10, seconds * 10 / paper.epochs / 3600, rel_tol=0.02, abs_tol=0.05):
        return wrong("the share is right; the hours are not: every task's steps scale with its number of epochs")
    return correct("the growth phase costs less than its share of tasks: its network is narrower")


def exercise_4_2(
    beats_scratch: Mapping[str, str] | None, rows: Sequence[dict], front_rows: Sequence[dict] | None
) -> Verdict:
    """Ex. 2: does the paper's learngene, and does front inheritance, beat scratch on your images, paired by task?"""
    if (missing := first_unanswered(front_rows=front_rows, beats_scratch=beats_scratch)) is not None:
        return missing
    tables = {"learngene": rows, "front inheritance": front_rows}
    if set(beats_scratch) != set(tables):
        return wrong(f"answer for each of {list(tables)}")
    for name, table in tables.items():
        mine, scratch = method_row(table, "learngene"), method_row(table, "scratch")
        if mine is None or scratch is None:
            return wrong(f"the {name} table holds no learngene and scratch rows: pass what `evaluate` returned")
        verdict = check_direction(beats_scratch[name], mine["task_accuracies"], scratch["task_accuracies"], BEATS)
        if not verdict.correct:
            return wrong(f"{name}: {verdict.message.removeprefix('not yet: ')}")
    return correct("compare with README Results: is your data more like glyphs or Omniglot?")
