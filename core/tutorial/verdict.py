"""What a tutorial check answers, and the comparisons several checks share.

A check never states the expected answer: a wrong answer gets a hint that says what to look at, so a handout
(solution cells removed) can run every check without giving its exercise away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.stats import paired_difference

CANNOT_TELL = "cannot tell"


@dataclass(frozen=True, repr=False)
class Verdict:
    """The outcome of one check: `status` is "correct", "wrong" or "unanswered"; `message` is what the student reads."""

    status: str
    message: str

    @property
    def correct(self) -> bool:
        """Whether the answer agrees with the student's own measurements."""
        return self.status == "correct"

    def __repr__(self) -> str:
        """The line a notebook shows when a check is the cell's last expression."""
        mark = {"correct": "✅", "wrong": "❌", "unanswered": "✏️"}[self.status]
        return f"{mark} {self.message}"


def correct(detail: str = "") -> Verdict:
    """A right answer, with an optional remark to think further about."""
    return Verdict("correct", "correct" + (f": {detail}" if detail else ""))


def wrong(hint: str) -> Verdict:
    """A wrong answer and what to look at, never the expected value itself."""
    return Verdict("wrong", f"not yet: {hint}")


def unanswered(name: str) -> Verdict:
    """The answer variable still holds None: the student has not answered."""
    return Verdict(
        "unanswered", f"no answer yet: set `{name}` in the exercise cell above, run it, then this cell again"
    )


def first_unanswered(**answers: object) -> Verdict | None:
    """The unanswered verdict for the first answer that is still None, else None."""
    for name, value in answers.items():
        if value is None:
            return unanswered(name)
    return None


def paired_direction(a: Sequence[float], b: Sequence[float]) -> str:
    """ "higher" or "lower" when the 95% interval of a - b, paired by task, excludes 0, else "cannot tell"."""
    diff = paired_difference(a, b)
    if not (math.isfinite(diff.mean) and math.isfinite(diff.ci95)):
        return CANNOT_TELL
    if diff.mean - diff.ci95 > 0:
        return "higher"
    if diff.mean + diff.ci95 < 0:
        return "lower"
    return CANNOT_TELL


def check_direction(answer: str, a: Sequence[float], b: Sequence[float], words: dict[str, str]) -> Verdict:
    """Check a three-way answer about a - b paired by task; `words` maps "higher"/"lower"/CANNOT_TELL to the answers."""
    allowed = sorted(words.values())
    if answer not in allowed:
        return wrong(f"answer one of {allowed}")
    if len(a) != len(b):
        return wrong(f"the two sets of accuracies cover {len(a)} and {len(b)} target tasks: run both on the same ones")
    expected = words[paired_direction(a, b)]
    if answer == expected:
        return correct("the 95% interval of the per-task differences decides, not the two means alone")
    if expected == words[CANNOT_TELL]:
        return wrong(
            "the means differ, but compute the per-task differences and their 95% interval: what does it hold?"
        )
    if answer == words[CANNOT_TELL]:
        return wrong("compute the per-task differences and their 95% interval: does it contain 0?")
    return wrong("look at the sign of the mean per-task difference again")


def method_row(rows: Iterable[dict], method: str) -> dict | None:
    """The row of `method` in an evaluate() table, or None."""
    return next((r for r in rows if r.get("method") == method), None)


def compare_learngene(
    answer: str, first: Sequence[dict], second: Sequence[dict], names: tuple[str, str], words: dict[str, str]
) -> Verdict:
    """Check a three-way answer on the learngene rows of two evaluate() tables on the same target tasks; `names` are
    the tables' variable names, for the hint when one holds no learngene row."""
    sides = []
    for rows, name in zip((first, second), names):
        row = method_row(rows, "learngene")
        if row is None:
            return wrong(f"`{name}` holds no learngene row: pass what `evaluate` returned")
        sides.append(row["task_accuracies"])
    return check_direction(answer, sides[0], sides[1], words)
