"""Checks for the exercises of tutorial 03 (individual models), computed from the student's own result tables."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from core.collective.runs import Run
from core.learngene.selection import block_label, candidates, run_scores, threshold_layers, validate_block
from core.tutorial.verdict import Verdict, compare_learngene, correct, first_unanswered, method_row, wrong

SIGNS = ("same", "flipped", "n/a")
SIDE_BY_SIDE = ("paper", "transfer")  # the criteria tutorial 03 sets side by side


def exercise_3_1(freeze_answer: str | None, rows: Sequence[dict], frozen_rows: Sequence[dict] | None) -> Verdict:
    """Ex. 1: does freezing the inherited block move the learngene's 1-shot accuracy up or down, paired by task?"""
    if (missing := first_unanswered(frozen_rows=frozen_rows, freeze_answer=freeze_answer)) is not None:
        return missing
    words = {"higher": "up", "lower": "down", "cannot tell": "cannot tell"}
    return compare_learngene(freeze_answer, frozen_rows, rows, ("frozen_rows", "rows"), words)


def exercise_3_2(early_answer: str | None, rows: Sequence[dict], early_rows: Sequence[dict] | None) -> Verdict:
    """Ex. 2: does the learngene from task 0 score higher or lower than the default one, paired by task?"""
    if (missing := first_unanswered(early_rows=early_rows, early_answer=early_answer)) is not None:
        return missing
    words = {"higher": "task 0", "lower": "default", "cannot tell": "cannot tell"}
    return compare_learngene(early_answer, early_rows, rows, ("early_rows", "rows"), words)


def exercise_3_3(beat_twin: Collection[str] | None, tiny: Sequence[dict] | None) -> Verdict:
    """Ex. 3: which strategies beat their twin at the new size (95% interval of the paired difference above 0)."""
    if (missing := first_unanswered(tiny=tiny, beat_twin=beat_twin)) is not None:
        return missing
    compared = {p["method"]: p["vs_twin"] for p in tiny if p.get("vs_twin") and not p["method"].startswith("scratch")}
    unknown = set(beat_twin) - set(compared)
    if unknown:
        return wrong(f"name strategies among {sorted(compared)}; unknown: {sorted(unknown)}")
    expected = {m for m, gap in compared.items() if math.isfinite(gap["ci95"]) and gap["mean"] - gap["ci95"] > 0}
    if set(beat_twin) == expected:
        return correct("only an interval above 0 counts as beating the twin")
    hints = []
    if set(beat_twin) - expected:
        hints.append(f"{len(set(beat_twin) - expected)} of yours have an interval that reaches 0 or below")
    if expected - set(beat_twin):
        hints.append(f"{len(expected - set(beat_twin))} more have an interval entirely above 0")
    return wrong("; ".join(hints))


def _sign(value: float) -> int | None:
    """+1 or -1, or None when the correlation is undefined (too few windows, or a constant side)."""
    return None if not math.isfinite(value) or value == 0 else (1 if value > 0 else -1)


def exercise_3_5(
    signs_5: Mapping[str, str] | None, best_5: str | None, study: Mapping, study_5: Mapping | None
) -> Verdict:
    """Ex. 5: whether each criterion's Spearman sign is the same at 5 shots as at 1, and the best window at 5 shots."""
    if (missing := first_unanswered(study_5=study_5, signs_5=signs_5, best_5=best_5)) is not None:
        return missing
    criteria = list(study["correlation"])
    if set(signs_5) != set(criteria) or not set(signs_5.values()) <= set(SIGNS):
        return wrong(f"give one of {list(SIGNS)} for each of {criteria}")
    off = []
    for criterion in criteria:
        one, five = (_sign(s["correlation"][criterion]["spearman"]) for s in (study, study_5))
        expected = "n/a" if one is None or five is None else "same" if one == five else "flipped"
        if signs_5[criterion] != expected:
            off.append(criterion)
    best = max(study_5["rows"], key=lambda r: r["mean_accuracy"])["method"]
    if off:
        return wrong(f"the sign for {off} is not what your two studies show (n/a: a ρ is undefined)")
    if best_5 != best:
        return wrong("not the window with the highest mean accuracy in your 5-shot study")
    return correct("read the p-values too: with few windows a sign can flip by chance")


def threshold_blocks(run: Run, criterion: str) -> list[str]:
    """The blocks the threshold rule can select under `criterion`, as the threshold rises through the conv layers'
    own scores, shortest first (a threshold whose layers are not adjacent selects no block)."""
    scores = run_scores(run, criterion=criterion)
    values = sorted({float(v) for v in (scores.of(n)[0] for n in candidates(scores.layer_names)) if np.isfinite(v)})
    blocks: list[str] = []
    for threshold in values:
        ok, _, block = validate_block(scores.layer_names, threshold_layers(scores, threshold))
        if ok and block_label(block) not in blocks:
            blocks.append(block_label(block))
    return blocks


def exercise_3_6(
    best_blocks: Mapping[str, str] | None, threshold_rows: Sequence[Sequence[dict]] | None, run: Run
) -> Verdict:
    """Ex. 6: for each criterion, the block with the highest learngene mean accuracy among every block its threshold
    can select, all of them trained on the same targets (`threshold_rows`: one evaluate() table per block)."""
    if (missing := first_unanswered(threshold_rows=threshold_rows, best_blocks=best_blocks)) is not None:
        return missing
    if not isinstance(best_blocks, Mapping) or set(best_blocks) != set(SIDE_BY_SIDE):
        return wrong(f"give one block label (such as 'convA-convB') for each of {list(SIDE_BY_SIDE)}")
    trained = {}
    for table in threshold_rows:
        row = method_row(table, "learngene") if isinstance(table, Sequence) else None
        if row is None:
            return wrong("every entry of `threshold_rows` is what `evaluate` returned for one block")
        trained[row["layers"]] = row["mean_accuracy"]
    off = []
    for criterion in SIDE_BY_SIDE:
        offered = threshold_blocks(run, criterion)
        untrained = [b for b in offered if b not in trained]
        if untrained:
            return wrong(
                f"the {criterion} threshold can select {len(untrained)} more block(s) than you trained: raise it "
                "through its layers' scores one step at a time and evaluate each block it selects"
            )
        if best_blocks[criterion] not in offered:
            return wrong(f"no {criterion} threshold selects {best_blocks[criterion]!r}: answer among its own blocks")
        if trained[best_blocks[criterion]] < max(trained[b] for b in offered):
            off.append(criterion)
    if off:
        return wrong(
            f"for {off}: not the block with the highest learngene mean accuracy among those its threshold selects"
        )
    return correct(
        "compare the blocks the two thresholds offer, and the layer your best blocks start at; then read the paired "
        "difference of the two best before calling one better"
    )
