"""Open-world check: does the collective model tell images of unseen classes from seen ones?"""

from __future__ import annotations

import math

import torch

from core.collective.network import ExpandableNet
from core.data.imageset import ImageSet
from core.data.tasks import SourceTask
from core.data.transforms import normalise


def auroc(unknown_scores: torch.Tensor, known_scores: torch.Tensor) -> float:
    """Area under the ROC curve for 'higher score = unknown' (Mann-Whitney U with ties counted half)."""
    if len(unknown_scores) == 0 or len(known_scores) == 0:
        return math.nan
    scores = torch.cat([unknown_scores, known_scores]).double()
    ranks = torch.empty_like(scores)
    order = torch.argsort(scores, stable=True)
    sorted_scores = scores[order]
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    n_pos, n_neg = len(unknown_scores), len(known_scores)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def unknown_scores(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 'unknown-ness' scores per image: 1 - max softmax probability, and the energy -logsumexp(logits)."""
    msp = 1.0 - torch.softmax(logits, dim=1).max(dim=1).values
    energy = -torch.logsumexp(logits, dim=1)
    return msp, energy


def open_world_auroc(
    net: ExpandableNet, imageset: ImageSet, stream: list[SourceTask], task: int, device: str
) -> tuple[float, float]:
    """AUROC of held-out images of task `task`'s new classes (unknown) against held-out images of seen classes."""
    seen: dict[int, torch.Tensor] = {}
    for earlier in stream[:task]:
        for i, c in enumerate(earlier.classes):
            seen[c] = earlier.heldout[earlier.heldout_labels == i]
    current = stream[task]
    new = [current.heldout[current.heldout_labels == i] for i, c in enumerate(current.classes) if c not in seen]
    if not seen or not new:
        return math.nan, math.nan
    known_idx, unknown_idx = torch.cat(list(seen.values())), torch.cat(new)
    if len(known_idx) == 0 or len(unknown_idx) == 0:
        return math.nan, math.nan
    net.eval()
    with torch.no_grad():
        known, unknown = (
            unknown_scores(torch.cat([net(normalise(imageset.images[i], device)).cpu() for i in idx.split(256)]))
            for idx in (known_idx, unknown_idx)
        )
    return auroc(unknown[0], known[0]), auroc(unknown[1], known[1])
