"""Checks for the exercises of tutorial 02 (the gradient criterion), recomputed from the student's own runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from core.collective.health import health_rows
from core.collective.runs import Run
from core.learngene.selection import (
    block_label,
    candidates,
    default_top_k,
    layer_scores,
    scores_of_matrix,
    select_top_k,
    windows,
)
from core.tutorial.verdict import Verdict, correct, first_unanswered, wrong

AGGREGATIONS = ("mean", "median", "max")
# The three lines of exercise 6, each a test on one task's health row.
TROUBLE = {
    "train accuracy < 0.5": lambda row, first: row["train_accuracy"] < 0.5,
    "rank < 1/4 of the start": lambda row, first: row["feature_rank"] < first["feature_rank"] / 4,
    "fc1 more than half dead": lambda row, first: row["dead_fraction"]["fc1"] > 0.5,
}


def _pick(run: Run, matrix: np.ndarray, layer_names: Sequence[str]) -> str:
    """The window the run's rule (default length, lowest mean over the post-growth tasks) takes on a (tasks, layers)
    signal."""
    scores = scores_of_matrix(
        matrix, layer_names, expansion_tasks=run.config.expansion_tasks, tau=run.config.tau, aggregation="mean"
    )
    return select_top_k(scores, default_top_k(run)).label


def _labels(run: Run) -> list[str]:
    """Every window label of the run's default length: what a block answer can be."""
    names = run.spec().layer_names()
    return [block_label(block) for block in windows(names, default_top_k(run))]


def _block_answer(answer: str, run: Run) -> Verdict | None:
    """A hint when `answer` is no window label of the run, else None."""
    labels = _labels(run)
    if answer not in labels:
        return wrong(f"answer a window label of {default_top_k(run)} layers, one of {labels}")
    return None


def _criterion_pick(run: Run) -> str:
    """The learngene the signed criterion selects on the run."""
    scores = layer_scores(run.criterion(), expansion_tasks=run.config.expansion_tasks)
    return select_top_k(scores, default_top_k(run)).label


def exercise_2_1(rms_pick: str | None, run: Run) -> Verdict:
    """Ex. 1: the block picked by the RMS gradient (mean gradient norm / sqrt(weights) at each task)."""
    if (missing := first_unanswered(rms_pick=rms_pick)) is not None:
        return missing
    if (bad := _block_answer(rms_pick, run)) is not None:
        return bad
    log = run.criterion()
    grad_norm = np.nanmean(log.grad_norm, axis=1)
    layers = [run.load_net(t).weight_layers() for t in range(run.finished_tasks)]
    numel = np.array([[by_name[n].weight.numel() for n in log.layer_names] for by_name in layers])
    expected = _pick(run, grad_norm / np.sqrt(numel), log.layer_names)
    if rms_pick == expected:
        return correct()
    if rms_pick == _pick(run, grad_norm, log.layer_names) != expected:
        return wrong("that is what the raw gradient norm picks: divide each entry by sqrt(n_l) of its task")
    if rms_pick == _criterion_pick(run) != expected:
        return wrong("that is the criterion's pick; the RMS gradient is another signal")
    return wrong("not the block your RMS gradient selects: n_l is the layer's number of weights at each task")


def exercise_2_2(picks: Mapping[str, str] | None, punishes: str | None, run: Run) -> Verdict:
    """Ex. 2: the block each aggregation selects, and the aggregation a single loud task hurts most."""
    if (missing := first_unanswered(picks=picks, punishes=punishes)) is not None:
        return missing
    if set(picks) != set(AGGREGATIONS):
        return wrong(f"give one block for each of {list(AGGREGATIONS)}")
    log, k = run.criterion(), default_top_k(run)
    off = [
        a
        for a in AGGREGATIONS
        if picks[a]
        != select_top_k(layer_scores(log, expansion_tasks=run.config.expansion_tasks, aggregation=a), k).label
    ]
    if off:
        return wrong(f"your block for {off} is not what `layer_scores(..., aggregation=...)` gives on your run")
    if punishes not in AGGREGATIONS:
        return wrong(f"`punishes` is one of {list(AGGREGATIONS)}")
    if punishes != "max":
        return wrong("the blocks are right; for `punishes`, which aggregation moves most when one task is loud?")
    return correct("a layer must be quiet on every post-growth task to score low under the maximum")


def exercise_2_3(differ_taus: Sequence[float] | None, run: Run, taus: Sequence[float]) -> Verdict:
    """Ex. 3: the taus of the grid where the signed and the absolute count select different blocks."""
    if (missing := first_unanswered(differ_taus=differ_taus)) is not None:
        return missing
    log, k, expansion = run.criterion(), default_top_k(run), run.config.expansion_tasks
    differ = [
        tau
        for tau in taus
        if select_top_k(layer_scores(log, expansion_tasks=expansion, tau=tau), k).label
        != select_top_k(layer_scores(log, expansion_tasks=expansion, tau=tau, absolute=True), k).label
    ]
    given = [float(t) for t in differ_taus]
    # atol=0: numpy's default absolute tolerance (1e-8) would call 1e-12 and 1e-8 the same tau
    extra = [t for t in given if not any(np.isclose(t, d, rtol=1e-6, atol=0.0) for d in differ)]
    left_out = [d for d in differ if not any(np.isclose(t, d, rtol=1e-6, atol=0.0) for t in given)]
    if not extra and not left_out:
        return correct(f"{len(differ)} of {len(taus)} taus" if differ else "they agree on the whole grid")
    hints = []
    if extra:
        hints.append(f"at {len(extra)} of your taus both counts select the same block")
    if left_out:
        hints.append(f"{len(left_out)} taus of the grid where they differ are missing")
    return wrong("; ".join(hints))


def exercise_2_4(near_zero: Mapping[str, float] | None, run: Run, tau: float) -> Verdict:
    """Ex. 4: every conv layer's signed fraction at a tiny tau, averaged over the post-growth tasks."""
    if (missing := first_unanswered(near_zero=near_zero)) is not None:
        return missing
    log = run.criterion()
    convs = list(candidates(log.layer_names))
    if set(near_zero) != set(convs):
        return wrong(f"give one share for each conv layer: {convs}")
    scores = layer_scores(log, expansion_tasks=run.config.expansion_tasks, tau=tau)
    off = [n for n in convs if not abs(float(near_zero[n]) - scores.of(n)[0]) <= 0.01]
    if not off:
        return correct("about half of the entries are positive, so the signed count tops out near 0.5")
    if any(float(near_zero[n]) > 0.6 for n in off):
        return wrong("a signed share well above 0.5 needs most entries positive: did you count |g| > τ instead?")
    return wrong(f"{off}: not the mean over the post-growth tasks of `log.per_task(tau)` at that τ")


def weight_change(run: Run) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
    """Relative change of every conv layer's weights during each task, the layer names, and the (task, layer) cells
    inflated by a widening of the layer before (its weights on copied inputs were divided by the copies)."""
    nets = [run.load_net(t) for t in range(run.finished_tasks)]
    convs = [n for n in run.criterion().layer_names if n.startswith("conv")]
    change = np.full((run.finished_tasks, len(convs)), np.nan)
    with torch.no_grad():
        for t in range(1, run.finished_tasks):
            for j, name in enumerate(convs):
                new, old = nets[t].convs[name].conv.weight, nets[t - 1].convs[name].conv.weight
                out_ch, in_ch = old.shape[:2]
                change[t, j] = float((new[:out_ch, :in_ch] - old).norm() / old.norm())
    widened = {(row["task"], layer) for row in run.metrics() if row["kind"] == "task" for layer, _ in row["widened"]}
    inflated = [(t, convs[convs.index(layer) + 1]) for t, layer in widened if layer != convs[-1]]
    return change, convs, inflated


def exercise_2_5(masked_pick: str | None, run: Run) -> Verdict:
    """Ex. 5: the block the weight change selects once the widening-inflated cells are masked."""
    if (missing := first_unanswered(masked_pick=masked_pick)) is not None:
        return missing
    if (bad := _block_answer(masked_pick, run)) is not None:
        return bad
    change, convs, inflated = weight_change(run)
    masked = change.copy()
    for t, name in inflated:
        masked[t, convs.index(name)] = np.nan
    expected = _pick(run, masked, convs)
    if masked_pick == expected:
        moved = expected != _pick(run, change, convs)
        return correct("masking moved the selection" if moved else "the masked cells did not move the selection")
    if masked_pick == _pick(run, change, convs):
        return wrong("that is the selection with the inflated cells still in: set them to NaN first")
    return wrong("not the block the masked weight change selects on your run")


def exercise_2_6(first_tasks: Mapping[str, int | None] | None, shared_run: Run) -> Verdict:
    """Ex. 6: the first task at which each sign of trouble appears on the shared-head run (None: never)."""
    if (missing := first_unanswered(first_tasks=first_tasks)) is not None:
        return missing
    if set(first_tasks) != set(TROUBLE):
        return wrong(f"give a task (or None for never) for each of {list(TROUBLE)}")
    rows = health_rows(shared_run.metrics())
    if not rows:
        return wrong("this run holds no health record: train it again with the current engine")
    by_task = {row["task"]: row for row in rows}
    hints = []
    for name, crossed in TROUBLE.items():
        expected = next((row["task"] for row in rows if crossed(row, rows[0])), None)
        given = first_tasks[name]
        if given == expected:
            continue
        if given is None:
            hints.append(f"{name}: some task does cross it")
        elif given not in by_task or not crossed(by_task[given], rows[0]):
            hints.append(f"{name}: task {given} does not cross it")
        else:
            hints.append(f"{name}: an earlier task crosses it already")
    return wrong("; ".join(hints)) if hints else correct("compare the order in which the three lines are crossed")
