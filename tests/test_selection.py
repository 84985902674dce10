"""Learngene selection: scores over post-expansion tasks, three rules, and errors that name the nearest valid block."""

import numpy as np
import pytest

from core.collective.criterion import CriterionLog, EpochCriterion
from core.collective.histogram import NBINS
from core.collective.runs import open_run
from core.errors import LearngeneError
from core.learngene.rules import rule_picks
from core.learngene.selection import (
    LayerScores,
    check_block,
    layer_scores,
    parse_layers,
    select_explicit,
    select_threshold,
    select_top_k,
    validate_block,
    windows,
)

NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2")


def scores(values, spreads=None):
    values = np.array(values, dtype=float)
    spreads = np.zeros_like(values) if spreads is None else np.array(spreads, dtype=float)
    return LayerScores(NAMES, values, spreads, (0,), 1e-4, False, "mean")


def log_with(per_task: list[list[float]]) -> CriterionLog:
    """A criterion log whose per-task signed values are the given rows (one epoch per task)."""
    log = CriterionLog.empty(NAMES, 1e-4, 1)
    for t, row in enumerate(per_task):
        row = np.array(row, dtype=float)
        log.record(t, 0, EpochCriterion(NAMES, row, row, np.zeros((len(NAMES), 2, NBINS)), np.zeros(len(NAMES)), 1))
    return log


def test_scores_use_only_tasks_after_expansion_with_their_spread():
    log = log_with([[0.9] * 8, [0.2, 0.1, 0.3, 0.4, 0.1, 0.0, 0, 0], [0.4, 0.3, 0.3, 0.2, 0.1, 0.0, 0, 0]])
    s = layer_scores(log, expansion_tasks=1)
    assert s.tasks == (1, 2)
    assert s.of("conv1") == pytest.approx((0.3, 0.1))
    assert s.of("conv3") == pytest.approx((0.3, 0.0))


def test_scores_fall_back_to_all_tasks_before_expansion_ends_and_aggregate_by_median_or_max():
    log = log_with([[0.1] * 8, [0.2] * 8, [0.6] * 8])
    assert layer_scores(log, expansion_tasks=10).tasks == (0, 1, 2)
    assert layer_scores(log, expansion_tasks=10, aggregation="median").of("conv2")[0] == pytest.approx(0.2)
    assert layer_scores(log, expansion_tasks=10, aggregation="max").of("conv2")[0] == pytest.approx(0.6)
    with pytest.raises(LearngeneError, match="aggregation"):
        layer_scores(log, expansion_tasks=0, aggregation="sum")


def test_scores_at_another_tau_come_from_the_histograms(smoke_run):
    run = open_run(smoke_run)
    log = run.criterion()
    s = layer_scores(log, expansion_tasks=run.config.expansion_tasks, tau=1e-6, absolute=True)
    expected = np.nanmean(log.per_task(1e-6, absolute=True)[run.config.expansion_tasks :], axis=0)
    np.testing.assert_allclose(s.score, expected)
    assert s.tau == 1e-6 and s.absolute


def test_non_contiguous_selection_names_the_block_spanning_it():
    with pytest.raises(LearngeneError) as err:
        check_block(NAMES, ("conv3", "conv5"))
    assert str(err.value) == "conv3, conv5 are not contiguous: the nearest valid block is conv3-conv5"


def test_a_block_that_starts_at_the_input_layer_is_valid_front_inheritance():
    assert validate_block(NAMES, ("conv2", "conv1")) == (True, "", ("conv1", "conv2"))
    assert check_block(NAMES, ("conv1",)).label == "conv1"


@pytest.mark.parametrize(
    "selected, nearest",
    [
        ((), ("conv6",)),
        (("fc1",), ("conv6",)),
        (("conv9",), ("conv6",)),
        (("conv4", "fc1"), ("conv4",)),
    ],
)
def test_empty_head_or_unknown_selections_are_refused_with_a_nearest_block(selected, nearest):
    ok, message, suggestion = validate_block(NAMES, selected)
    assert not ok and suggestion == nearest
    assert message.endswith(
        f"the nearest valid block is {'-'.join(nearest) if len(nearest) == 1 else nearest[0] + '-' + nearest[-1]}"
    )


def test_a_valid_block_is_returned_in_network_order():
    assert validate_block(NAMES, ("conv5", "conv4")) == (True, "", ("conv4", "conv5"))
    assert check_block(NAMES, ("conv6", "conv5", "conv4")).label == "conv4-conv6"


def test_explicit_layers_accept_a_range_or_a_list():
    assert (
        parse_layers("conv4-conv6", NAMES) == parse_layers("conv4, conv5,conv6", NAMES) == ("conv4", "conv5", "conv6")
    )
    assert select_explicit(NAMES, "conv4-conv6").as_dict()["layers"] == ["conv4", "conv5", "conv6"]
    with pytest.raises(LearngeneError, match="conv9 is not a layer"):
        parse_layers("conv4-conv9", NAMES)
    with pytest.raises(LearngeneError, match="low to high"):
        parse_layers("conv6-conv4", NAMES)


def test_threshold_picks_layers_at_or_below_it():
    s = scores([0.4, 0.3, 0.2, 0.1, 0.05, 0.05, 0.0, 0.0])
    assert select_threshold(s, 0.1).layers == ("conv4", "conv5", "conv6")
    assert select_threshold(s, 0.1).rule == "threshold"


def test_threshold_that_splits_the_layers_names_the_nearest_block():
    s = scores([0.4, 0.3, 0.05, 0.2, 0.05, 0.3, 0.0, 0.0])
    with pytest.raises(LearngeneError, match="conv3, conv5 are not contiguous: the nearest valid block is conv3-conv5"):
        select_threshold(s, 0.1)


def test_threshold_below_every_score_names_the_lowest_layer():
    s = scores([0.5, 0.3, 0.2, 0.1, 0.06, 0.05, 0.0, 0.0])
    with pytest.raises(LearngeneError, match=r"lowest: conv6 at 0.05.*nearest valid block is conv6"):
        select_threshold(s, 0.001)


def test_top_k_finds_the_most_stable_window_among_all_conv_windows():
    s = scores([0.4, 0.01, 0.3, 0.2, 0.1, 0.1, 0.0, 0.0])
    assert select_top_k(s, 2).layers == ("conv5", "conv6")
    assert select_top_k(s, 1).layers == ("conv2",)
    assert windows(NAMES, 2)[0] == ("conv1", "conv2") and len(windows(NAMES, 2)) == 5
    assert select_top_k(scores([0.0, 0.01, 0.3, 0.2, 0.1, 0.1, 0.0, 0.0]), 2).layers == ("conv1", "conv2")


def test_top_k_ties_are_broken_by_lower_spread():
    s = scores([0.5, 0.1, 0.1, 0.3, 0.1, 0.1, 0.0, 0.0], spreads=[0, 0.05, 0.05, 0, 0.01, 0.01, 0, 0])
    assert select_top_k(s, 2).layers == ("conv5", "conv6")


def test_top_k_out_of_range_says_the_valid_range():
    with pytest.raises(LearngeneError, match="choose 1..6"):
        select_top_k(scores([0.1] * 8), 7)


def test_the_page_rule_picks_what_the_command_line_rules_select_and_shows_unusable_picks_as_they_are():
    s = scores([0.9, 0.2, 0.1, 0.6, 0.05, 0.7, 0.0, 0.0])
    assert rule_picks(s, "top-k", top_k=2) == select_top_k(s, 2).layers == ("conv2", "conv3")
    assert rule_picks(s, "top-k", top_k=3) == select_top_k(s, 3).layers
    assert rule_picks(s, "threshold", threshold=0.3) == ("conv2", "conv3", "conv5")  # not a block: shown, then refused
    assert rule_picks(s, "threshold", threshold=0.08) == select_threshold(s, 0.08).layers == ("conv5",)
    assert rule_picks(s, "manual", chosen=("conv6", "conv1")) == ("conv6", "conv1")
    assert rule_picks(s, "top-k", top_k=9) == select_top_k(s, 6).layers  # longer than the network: every candidate
    with pytest.raises(ValueError, match="unknown selection rule"):
        rule_picks(s, "best")
