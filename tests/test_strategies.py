"""Inheritance strategies: front inheritance, weight selection, prototype heads, tasks trained side by side,
paired statistics, the scale-free criterion and the criterion-against-transfer study."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from core.cli.main import main
from core.collective.criterion import CriterionLog
from core.collective.histogram import NBINS
from core.collective.runs import open_run
from core.individual.config import individual_preset
from core.individual.head import penultimate, prototype_head
from core.individual.methods import individual_method, run_methods, selection_method
from core.individual.model import build_individual, fit_spec, fitted_spec, narrow_spec
from core.individual.targets import make_targets, run_imageset
from core.individual.weight_selection import evenly_spaced, select_weights
from core.learngene.extraction import extract
from core.learngene.selection import check_block, relative_matrix
from core.stats import paired_difference, spearman

QUICK = dict(epochs=3, batch_size=10, query=4, head_hidden=(16,))


@pytest.fixture(scope="module")
def setup(smoke_run):
    run = open_run(smoke_run)
    config = individual_preset("fast", **QUICK)
    targets = make_targets(run, run_imageset(run), way=3, shot=2, query=4, tasks=4, seed=0)
    return run, config, targets


def test_a_block_that_starts_at_conv1_needs_no_new_front_and_gets_new_layers_after_it(setup):
    run, _, _ = setup
    front = extract(run, check_block(run.spec().layer_names(), ("conv1", "conv2")))
    spec = fit_spec(front, 5, width_multiplier=0.5)
    collective = run.spec(front.task)
    assert spec.front_widths == () and spec.block_in_channels == collective.in_channels
    assert spec.back_widths == tuple(max(1, round(w * 0.5)) for w in collective.widths[2:])
    model = build_individual(spec, 0, front).eval()
    x = torch.randn(2, 1, 32, 32)
    net = run.load_net(front.task).eval()
    with torch.no_grad():
        assert torch.allclose(model.block["conv1"](x), net.convs["conv1"](x))
        assert model(x).shape == (2, 5)


def test_weight_selection_takes_evenly_spaced_channels_of_every_layer_with_their_statistics(setup):
    run, _, _ = setup
    base = run.load_net(run.last_task)
    small = select_weights(base, narrow_spec(base.spec, 0.5, 5), seed=0)
    previous = torch.arange(1)
    for name, block in small.convs.items():
        keep = evenly_spaced(base.convs[name].conv.out_channels, block.conv.out_channels)
        assert torch.equal(block.conv.weight, base.convs[name].conv.weight[keep][:, previous])
        assert torch.equal(block.bn.running_var, base.convs[name].bn.running_var[keep])
        previous = keep
    assert evenly_spaced(8, 4).tolist() == [0, 2, 4, 6] and evenly_spaced(12, 12).tolist() == list(range(12))
    full = select_weights(base, narrow_spec(base.spec, 1.0, base.spec.num_outputs), seed=0).eval()
    with torch.no_grad():
        x = torch.randn(3, 1, 32, 32)
        assert torch.allclose(full.embed(x), base.eval().embed(x), atol=1e-5)  # at x1 it is the collective model


def test_a_prototype_head_classifies_the_support_set_like_nearest_centroids_before_training(setup):
    run, _, targets = setup
    gene = extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))
    model = build_individual(fit_spec(gene, 3, head_hidden=(16,)), 0, gene).eval()
    target = targets.tasks[0]
    prototype_head(model, target.query, target.query_labels)
    features = penultimate(model, target.query)
    means = torch.stack([features[target.query_labels == c].mean(0) for c in range(3)])
    nearest = torch.cdist(features, means).argmin(1)
    with torch.no_grad():
        assert torch.equal(model(target.query).argmax(1), nearest)


RECIPES = {
    "fine-tuned": {"freeze": False},
    "frozen": {"freeze": True},
    "cosine prototypes, kept statistics": {"head": "cosine", "head_init": "prototypes", "inherited_bn": "keep"},
}


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_tasks_trained_side_by_side_score_as_when_trained_one_at_a_time(setup, recipe):
    run, config, targets = setup
    gene = extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))
    config = dataclasses.replace(config, inherited_lr=0.5, **recipe)
    alone = individual_method("learngene", fitted_spec(gene, 3, config), dataclasses.replace(config, stack=1), gene)
    together = individual_method("learngene", fitted_spec(gene, 3, config), dataclasses.replace(config, stack=4), gene)
    assert alone.run_group is None and together.run_group is not None
    a, b = (run_methods([m], targets)[0]["task_accuracies"] for m in (alone, together))
    assert a == b  # the same fractions of the query, exactly (no float32 rounding in the stacked count)


def test_every_row_but_scratch_has_its_paired_difference_to_scratch_from_scipy(smoke_run, capsys):
    args = ["individual", "--run-dir", str(smoke_run), "--tasks", "3", "--shot", "2", "--epochs", "2", "--json"]
    assert main([*args, "--quiet", "--baselines"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    scratch = next(r for r in rows if r["method"] == "scratch")
    for row in rows:
        if row is scratch:
            assert "vs_scratch" not in row
            continue
        diff = np.array(row["task_accuracies"]) - np.array(scratch["task_accuracies"])
        assert row["vs_scratch"]["mean"] == pytest.approx(diff.mean())
        if diff.std() > 0:
            half = scipy_stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
            assert row["vs_scratch"]["ci95"] == pytest.approx(half)
    assert {r["method"] for r in rows} >= {"front conv1-conv2", "weight selection x0.5"}


def test_paired_difference_and_rank_correlation_match_scipy():
    a, b = [0.6, 0.7, 0.8, 0.5], [0.5, 0.72, 0.6, 0.4]
    d = paired_difference(a, b)
    assert d.p_value == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue) and d.tasks == 4
    rho, p = spearman([1, 2, 3, 4], [10, 30, 20, 40])
    assert rho == pytest.approx(0.8) and 0 < p < 1
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])[0])


def test_the_relative_criterion_does_not_change_when_a_layer_gradients_are_scaled():
    rng = np.random.default_rng(0)
    magnitudes = rng.lognormal(mean=-8, sigma=1.5, size=(1, 1, 1, 20000))
    log = CriterionLog.empty(("conv1",), 1e-3, 1, tasks=0)

    def record(scale: float) -> float:
        from core.collective.histogram import BIN_EDGES

        g = (magnitudes * scale).ravel() * np.where(rng.random(magnitudes.size) < 0.5, 1, -1)
        hist = np.zeros((1, 2, NBINS))
        bins = np.searchsorted(BIN_EDGES, np.abs(g), side="left") + 1
        np.add.at(hist[0, 0], bins[g > 0], 1)
        np.add.at(hist[0, 1], bins[g <= 0], 1)
        log.hist = (hist / g.size)[None, None].astype(np.float32)
        log.grad_norm = np.array([[[np.linalg.norm(g)]]])
        log.recorded = np.ones((1, 1), dtype=bool)
        return float(relative_matrix(log, np.array([[g.size]], dtype=float), 1.0, absolute=True)[0, 0])

    assert record(1.0) == pytest.approx(record(1000.0), abs=0.01)


def test_windows_report_the_criterion_rank_correlation_with_transfer(smoke_run, capsys):
    args = ["individual", "--run-dir", str(smoke_run), "--tasks", "2", "--epochs", "1", "--windows", "--json"]
    assert main([*args, "--quiet"]) == 0
    study = json.loads(capsys.readouterr().out)["windows"]
    assert [r["method"] for r in study["rows"]] == ["conv1-conv2", "conv2-conv3", "conv3-conv4"]
    assert set(study["correlation"]) == {"paper", "relative", "transfer"}
    for name, c in study["correlation"].items():
        rho = spearman([r["scores"][name] for r in study["rows"]], [r["mean_accuracy"] for r in study["rows"]])[0]
        assert c["spearman"] is None or c["spearman"] == pytest.approx(rho)


def test_the_size_sweep_of_weight_selection_and_scratch_spans_more_than_20x(setup):
    run, config, targets = setup
    base = run.load_net(run.last_task)
    small, large = (selection_method("scratch", base, m, 3, config, inherit=False) for m in (0.125, 1.0))
    assert large.params >= 20 * small.params and small.inherited_params == 0
