"""AUROC and unknown-class scores behave as the textbook definitions."""

import math

import torch

from core.collective.openworld import auroc, unknown_scores


def test_auroc_is_one_for_perfect_separation_and_half_for_ties():
    assert auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])) == 0.5
    assert math.isnan(auroc(torch.tensor([]), torch.tensor([1.0])))


def test_auroc_matches_pairwise_count_on_random_scores():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randint(0, 5, (40,), generator=g).float(), torch.randint(0, 5, (30,), generator=g).float()
    pairs = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    assert abs(auroc(pos, neg) - pairs.mean().item()) < 1e-12


def test_confident_logits_score_as_less_unknown():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    msp, energy = unknown_scores(logits)
    assert msp[0] < msp[1] and energy[0] < energy[1]
