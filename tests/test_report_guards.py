"""Every reported row, size point and window score belongs to the model it names, recomputed here independently.

One `learngene individual --baselines --sizes --windows --prefixes --json` run on a short smoke run; parameter counts
come from networks built here at the named width, window and prefix scores from the run's criterion.npz read with
numpy, Spearman's rho from scipy, and each block's accuracy from the table row that trains the same block by another
code path.
"""

import json

import numpy as np
import pytest
from architectures import collective_network, count, individual_network
from scipy import stats

from core.cli.main import main
from core.collective.runs import open_run
from core.individual.config import IndividualConfig
from core.learngene.selection import run_scores

GENE = ("conv3", "conv4")
WAY = 3


@pytest.fixture(scope="module")
def report(short_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "result.json"
    args = ["individual", "--run-dir", str(short_run), "--layers", "conv3-conv4", "--way", str(WAY), "--shot", "2"]
    args += ["--tasks", "3", "--epochs", "2", "--head-hidden", "16", "--baselines", "--sizes", "--windows"]
    args += ["--prefixes"]
    assert main([*args, "--out-json", str(out), "--quiet"]) == 0
    return open_run(short_run), json.loads(out.read_text())


def collective_params(run, task: int, multiplier: float) -> int:
    """Parameters of the collective's network at `multiplier` of its widths with a WAY-output head."""
    return count(collective_network(run, task, multiplier, WAY))


def conv_stack_params(run, task: int) -> int:
    """Parameters of the collective's conv layers under a WAY-output linear head on their flattened features."""
    net = run.load_net(task)
    return sum(count(block) for block in net.convs.values()) + (net.fcs["fc1"].in_features + 1) * WAY


def individual_params(run, task: int, layers: tuple[str, ...], config: IndividualConfig, multiplier: float) -> int:
    """Parameters of the individual model around `layers` with every new layer at `multiplier`."""
    return count(individual_network(run, task, layers, config, multiplier, WAY))


def config_of(result) -> IndividualConfig:
    values = dict(result["setup"]["config"])
    for key in ("front_widths", "front_pools", "head_hidden"):
        values[key] = None if values[key] is None else tuple(values[key])
    return IndividualConfig(**values)


def test_every_table_row_reports_the_parameters_of_the_model_it_names(report):
    run, result = report
    task, config = result["selection"]["task"], config_of(result)
    convs = sum(count(block) for block in run.load_net(task).convs.values())
    expected = {
        "learngene": individual_params(run, task, GENE, config, 1.0),
        "scratch": individual_params(run, task, GENE, config, 1.0),
        "front conv1-conv2": individual_params(run, task, ("conv1", "conv2"), config, 1.0),
        "window conv2-conv3": individual_params(run, task, ("conv2", "conv3"), config, 1.0),
        f"weight selection x{config.selection_multiplier:g}": collective_params(run, task, config.selection_multiplier),
        "collective-finetune": conv_stack_params(run, task),
        "nearest-centroid": convs,
    }
    assert {r["method"]: r["params"] for r in result["rows"] if r["method"] in expected} == expected


def test_every_size_point_reports_the_parameters_of_the_model_at_its_multiplier(report):
    run, result = report
    task, config = result["selection"]["task"], config_of(result)
    expected = {
        "learngene": lambda m: individual_params(run, task, GENE, config, m),
        "front inheritance": lambda m: individual_params(run, task, ("conv1", "conv2"), config, m),
        "weight selection": lambda m: collective_params(run, task, m),
    }
    checked = set()
    for point in result["sizes"]:
        if point["size"] != "collective" and point["method"] in expected:
            assert point["params"] == expected[point["method"]](point["multiplier"]), (point["method"], point["size"])
            checked.add((point["method"], point["multiplier"]))
    assert checked == {(name, m) for name in expected for m in (0.125, 0.25, 0.5, 1.0)}
    collective = [p for p in result["sizes"] if p["size"] == "collective"]
    assert [p["params"] for p in collective] == [conv_stack_params(run, task)] * 2  # and its twin


def paper_layer_scores(run) -> dict[str, float]:
    """Each layer's score as the criterion docs define it, from criterion.npz read with numpy: the fraction g > tau
    averaged over a task's recorded epochs, then over the tasks after expansion (all tasks when there are none)."""
    with np.load(run.path / "criterion.npz") as data:
        names, signed, recorded = [str(n) for n in data["layer_names"]], data["signed"], data["recorded"]
    per_task = np.array([[signed[t, recorded[t], i].mean() for i in range(len(names))] for t in range(len(signed))])
    later = [t for t in range(len(signed)) if t >= run.config.expansion_tasks and recorded[t].any()]
    tasks = later or [t for t in range(len(signed)) if recorded[t].any()]
    return dict(zip(names, per_task[tasks].mean(axis=0)))


def block_layers(label: str) -> list[str]:
    """The layers a block label names: "conv2-conv4" -> conv2, conv3, conv4; "conv1" -> conv1."""
    first, _, last = label.partition("-")
    start, end = int(first.removeprefix("conv")), int((last or first).removeprefix("conv"))
    return [f"conv{i}" for i in range(start, end + 1)]


STUDIES = {
    "windows": ["conv1-conv2", "conv2-conv3", "conv3-conv4"],
    "prefixes": ["conv1", "conv1-conv2", "conv1-conv3", "conv1-conv4"],
}


@pytest.mark.parametrize("study", STUDIES)
def test_each_block_of_a_study_carries_the_score_of_exactly_its_own_layers(report, study):
    run, result = report
    paper, relative = paper_layer_scores(run), run_scores(run, criterion="relative")
    rows = result[study]["rows"]
    assert [r["method"] for r in rows] == STUDIES[study]
    for row in rows:
        layers = block_layers(row["method"])
        assert row["scores"]["paper"] == pytest.approx(np.mean([paper[n] for n in layers]), rel=1e-9)
        assert row["scores"]["relative"] == pytest.approx(np.mean([relative.of(n)[0] for n in layers]), rel=1e-9)
    assert len({r["scores"]["paper"] for r in rows}) == len(rows)  # distinct, so a shifted pairing would show


@pytest.mark.parametrize("study", STUDIES)
def test_each_block_of_a_study_is_the_model_of_its_own_layers(report, study):
    run, result = report
    task, config = result["selection"]["task"], config_of(result)
    for row in result[study]["rows"]:
        layers = tuple(block_layers(row["method"]))
        assert row["params"] == individual_params(run, task, layers, config, 1.0), row["method"]
        assert row["inherited_params"] == sum(count(run.load_net(task).convs[n]) for n in layers), row["method"]


def test_each_windows_accuracy_is_that_of_the_same_block_trained_as_a_table_row(report):
    _, result = report
    twins = {"conv1-conv2": "front conv1-conv2", "conv2-conv3": "window conv2-conv3", "conv3-conv4": "learngene"}
    table = {r["method"]: r["task_accuracies"] for r in result["rows"]}
    for row in result["windows"]["rows"]:
        assert row["task_accuracies"] == table[twins[row["method"]]], row["method"]


def test_a_front_prefix_has_the_accuracy_of_the_same_front_trained_as_a_table_row(report):
    _, result = report
    table = {r["method"]: r["task_accuracies"] for r in result["rows"]}
    prefixes = {r["method"]: r["task_accuracies"] for r in result["prefixes"]["rows"]}
    assert prefixes["conv1-conv2"] == table["front conv1-conv2"]
    assert len({tuple(a) for a in prefixes.values()}) > 1


@pytest.mark.parametrize("study_name", STUDIES)
def test_the_reported_rank_correlations_are_scipys_on_the_reported_pairs(report, study_name):
    _, result = report
    study = result[study_name]
    accuracy = [r["mean_accuracy"] for r in study["rows"]]
    assert len(set(accuracy)) > 1
    for criterion, reported in study["correlation"].items():
        scores = [r["scores"][criterion] for r in study["rows"]]
        rho, p = stats.spearmanr(scores, accuracy)
        assert reported["spearman"] == pytest.approx(rho) and reported["p_value"] == pytest.approx(p)
