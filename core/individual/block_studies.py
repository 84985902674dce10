"""Does the criterion pick the layers that transfer? Blocks of layers inherited in turn, scored by their accuracy.

Two studies on a run. The window study inherits every contiguous window of the learngene's length (behind a new
random front when it does not start at conv1, as the paper's reconstruction does); the prefix study inherits every
front prefix conv1..convk (new layers after it, as front inheritance does; Yosinski et al., NeurIPS 2014, "How
transferable are features in deep neural networks?"). Each block uses the same individual model construction and
target tasks, and its accuracy is set beside its score under the paper's criterion, under the scale-free relative one
and under the transfer criterion (open-world nearest-centroid error, core.collective.transfer): the mean of its
layers' scores. Spearman's rank correlation between score and accuracy says whether a lower score (more stable; lower
open-world error) predicts better transfer: a criterion that predicts it has a negative correlation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from core.collective.runs import Run
from core.events import Listener
from core.individual.config import IndividualConfig
from core.individual.methods import individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.targets import Targets
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import CRITERIA, Selection, block_label, candidates, run_scores, windows
from core.stats import spearman


def prefixes(layer_names_all: Sequence[str]) -> list[tuple[str, ...]]:
    """Every block of conv layers that starts at conv1 (front inheritance's blocks), shortest first."""
    cands = candidates(layer_names_all)
    return [cands[:i] for i in range(1, len(cands) + 1)]


def block_study(
    run: Run,
    blocks: list[tuple[str, ...]],
    task: int,
    config: IndividualConfig,
    targets: Targets,
    *,
    label: str,
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
    root: str | None = None,
) -> dict:
    """Rows (one per block: layers, scores under each criterion, accuracy) and each criterion's Spearman rho; `label`
    names the study in its training events."""
    scores = {c: run_scores(run, criterion=c, root=root) for c in CRITERIA}
    methods = []
    for block in blocks:
        gene = extract(run, Selection(block, "block study", len(block)), task)
        methods.append(
            individual_method(block_label(block), fitted_spec(gene, targets.way, config), config, gene, device)
        )
    rows = run_methods(methods, targets, size=label, listeners=listeners, should_stop=should_stop)
    for row, block in zip(rows, blocks):
        row["scores"] = {c: float(np.mean([scores[c].of(n)[0] for n in block])) for c in CRITERIA}
    correlations = {}
    for c in CRITERIA:
        rho, p = spearman([r["scores"][c] for r in rows], [r["mean_accuracy"] for r in rows])
        correlations[c] = {"spearman": rho, "p_value": p}
    return {"task": task, "rows": rows, "correlation": correlations}


def window_blocks(run: Run, learngene: Learngene) -> list[tuple[str, ...]]:
    """The blocks the window study trains: every window of the learngene's length at its checkpoint."""
    return windows(run.spec(learngene.task).layer_names(), len(learngene.layers))


def prefix_blocks(run: Run, learngene: Learngene) -> list[tuple[str, ...]]:
    """The blocks the prefix study trains: every front prefix at the learngene's checkpoint."""
    return prefixes(run.spec(learngene.task).layer_names())


def window_study(run: Run, learngene: Learngene, config: IndividualConfig, targets: Targets, **options) -> dict:
    """Every window of the learngene's length inherited the paper's way: `block_study`'s result and the length k."""
    blocks = window_blocks(run, learngene)
    return {
        "k": len(learngene.layers),
        **block_study(run, blocks, learngene.task, config, targets, label="windows", **options),
    }


def prefix_study(run: Run, learngene: Learngene, config: IndividualConfig, targets: Targets, **options) -> dict:
    """Every front prefix conv1..convk inherited at the learngene's checkpoint: `block_study`'s result."""
    return block_study(run, prefix_blocks(run, learngene), learngene.task, config, targets, label="prefixes", **options)
