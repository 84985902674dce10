"""The scale-free relative criterion on hand-made gradients whose answer is known: entries above factor * RMS.

RMS = |g| / sqrt(N) for a layer of N weight entries. One entry of 10 and 99 of 0.5 have |g| = sqrt(124.75), so
RMS = 1.117 (exactly 1 entry above it) while |g| / N = 0.112 (every entry above it): dividing by the wrong power
of N changes the answer from 0.01 to 1.
"""

import numpy as np
import pytest
import torch
from torch import nn

from core.collective.criterion import CriterionLog, EpochRecorder
from core.learngene.selection import relative_matrix


def log_of(gradients: list[torch.Tensor], batches: int = 1) -> CriterionLog:
    """A one-task log of a 10x10 linear layer (N = 100) whose epochs saw `batches` batches of one gradient each."""
    layer = nn.Linear(10, 10)
    log = CriterionLog.empty(("fc1",), tau=1e-3, epochs=len(gradients))
    for epoch, gradient in enumerate(gradients):
        recorder = EpochRecorder({"fc1": layer}, tau=1e-3)
        layer.weight.grad = gradient.reshape(10, 10).clone()
        for _ in range(batches):
            recorder.observe()
        log.record(0, epoch, recorder.result())
    return log


HALVES = torch.cat([torch.full((50,), 0.2), torch.full((50,), 0.001)])  # RMS 0.141: half the entries above it


def hand_made(sign: float = 1.0) -> torch.Tensor:
    """One entry of 10 and 99 of 0.5 * sign (RMS 1.117)."""
    g = torch.full((100,), 0.5 * sign)
    g[37] = 10.0
    return g


@pytest.mark.parametrize("absolute", [True, False])
def test_the_relative_criterion_counts_entries_above_the_gradient_rms_not_above_norm_over_n(absolute):
    value = relative_matrix(log_of([hand_made()]), np.array([[100.0]]), 1.0, absolute=absolute)
    assert value.shape == (1, 1) and value[0, 0] == pytest.approx(0.01)


def test_the_factor_scales_the_threshold_and_negative_entries_count_only_in_absolute_mode():
    g = hand_made(sign=-1.0)  # 99 entries of -0.5, one of +10
    log = log_of([g])
    # 0.25 * RMS = 0.279 < 0.5 (and no entry in its histogram bin): every entry is above in magnitude, one in sign
    assert relative_matrix(log, np.array([[100.0]]), 0.25, absolute=True)[0, 0] == pytest.approx(1.0)
    assert relative_matrix(log, np.array([[100.0]]), 0.25, absolute=False)[0, 0] == pytest.approx(0.01)


def test_a_tasks_relative_value_is_the_mean_over_its_epochs_each_at_its_own_rms():
    log = log_of([hand_made(), HALVES])  # epoch 1: RMS 0.141, half the entries above
    assert relative_matrix(log, np.array([[100.0]]), 1.0, absolute=True)[0, 0] == pytest.approx((0.01 + 0.5) / 2)


def test_the_rms_of_an_epoch_is_that_of_its_mean_batch_gradient_norm():
    log = log_of([HALVES], batches=3)  # the per-batch mean norm, not the sum, sets the threshold
    assert relative_matrix(log, np.array([[100.0]]), 1.0, absolute=True)[0, 0] == pytest.approx(0.5)
