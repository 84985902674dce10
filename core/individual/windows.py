"""Does the criterion pick the layers that transfer? Every window of k layers, scored by inheritance accuracy.

For a run, every contiguous window of the learngene's length is inherited in turn (the same individual model
construction and target tasks for all) and its accuracy set beside the window's stability score under the paper's
criterion, under the scale-free relative one and under the transfer criterion (open-world nearest-centroid error,
core.collective.transfer). Spearman's rank correlation between score and accuracy says whether a lower score (more
stable; lower open-world error) predicts better transfer: a criterion that predicts it has a negative correlation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from core.collective.runs import Run
from core.events import Listener
from core.individual.config import IndividualConfig
from core.individual.methods import individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.targets import Targets
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import CRITERIA, Selection, block_label, run_scores, windows
from core.stats import spearman


def window_study(
    run: Run,
    learngene: Learngene,
    config: IndividualConfig,
    targets: Targets,
    *,
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
    root: str | None = None,
) -> dict:
    """Rows (one per window: layers, scores under each criterion, accuracy) and each criterion's Spearman rho."""
    names = run.spec(learngene.task).layer_names()
    blocks = windows(names, len(learngene.layers))
    scores = {c: run_scores(run, criterion=c, root=root) for c in CRITERIA}
    methods = []
    for block in blocks:
        gene = extract(run, Selection(block, "window study", len(block)), learngene.task)
        methods.append(
            individual_method(block_label(block), fitted_spec(gene, targets.way, config), config, gene, device)
        )
    rows = run_methods(methods, targets, size="windows", listeners=listeners, should_stop=should_stop)
    for row, block in zip(rows, blocks):
        row["scores"] = {c: float(np.mean([scores[c].of(n)[0] for n in block])) for c in CRITERIA}
    correlations = {}
    for c in CRITERIA:
        rho, p = spearman([r["scores"][c] for r in rows], [r["mean_accuracy"] for r in rows])
        correlations[c] = {"spearman": rho, "p_value": p}
    return {"k": len(learngene.layers), "task": learngene.task, "rows": rows, "correlation": correlations}
