"""The size sweep pairs every point with its twin: scratch of exactly the point's own architecture.

Training is replaced by a recorder that keeps each model as it would start training and scores it by its task's
seed and its size, so the sweep runs in seconds; which row a recorded model belongs to comes from the
TargetTaskFinished event that follows it. Architectures are built here independently (collective networks at the
named width, individual models around the named block) and parameter counts read off them.
"""

import dataclasses
import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from architectures import collective_network, conv_stack_network, count, individual_network
from safetensors.torch import load_file

from core.collective.runs import open_run
from core.events import TargetTaskFinished
from core.individual import baselines, methods
from core.individual.config import individual_preset
from core.individual.evaluation import plan_few_shot
from core.individual.sweep import Size, sweep, sweep_trainings
from core.individual.targets import make_targets, run_imageset
from core.individual.twins import TWIN_PHRASE, is_twin, twin_name, twin_strategy
from core.jobs.keys import job_key
from core.jobs.spec import FewShotJob
from core.learngene.extraction import extract
from core.learngene.selection import check_block

GENE = ("conv3", "conv4")
FRONT = ("conv1", "conv2")
WAY = 3
CONFIG = dict(epochs=1, batch_size=10, query=4, head_hidden=(16,), stack=1, augment=False)
SEED = "seed"
STRATEGIES = ("learngene", "front inheritance", "weight selection", "collective-finetune")


@pytest.fixture(scope="module")
def setup(short_run):
    run = open_run(short_run)
    gene = extract(run, check_block(run.spec().layer_names(), GENE))
    checkpoint = load_file(short_run / "checkpoints" / f"task_{gene.task:03d}.safetensors")
    targets = make_targets(run, run_imageset(run), way=WAY, shot=2, query=4, tasks=3, seed=0)
    return run, gene, checkpoint, targets, individual_preset("fast", **CONFIG)


@pytest.fixture
def swept(setup, monkeypatch):
    """The sweep's points and, per (row, size), the models it started and the target tasks they saw."""
    run, gene, _, targets, config = setup
    calls = []

    def record(model, target, config, **kwargs):
        calls.append((model, target))  # a score that differs between inherited and random weights, task by task
        return (target.seed % 89) / 100 + float(sum(p.detach().abs().sum() for p in model.parameters())) % 0.1

    monkeypatch.setattr(methods, "fit_and_test", record)
    monkeypatch.setattr(baselines, "fit_and_test", record)
    events = []
    points = sweep(run, gene, config, targets, listeners=[events.append])
    finished = [e for e in events if isinstance(e, TargetTaskFinished)]
    assert len(finished) == len(calls)
    trained: dict[tuple[str, str], list] = {}
    for event, call in zip(finished, calls):
        trained.setdefault((event.method, event.size), []).append(call)
    return points, trained


def expected_network(setup, method: str, multiplier: float, seed: int = 0) -> torch.nn.Module:
    """The architecture of a strategy's point at `multiplier`, built here from random weights."""
    run, gene, _, _, config = setup
    if method == "collective-finetune":
        return conv_stack_network(run, gene.task, WAY, seed)
    if method == "weight selection":
        return collective_network(run, gene.task, multiplier, WAY, seed)
    return individual_network(run, gene.task, GENE if method == "learngene" else FRONT, config, multiplier, WAY, seed)


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape but the output layer's bias (a cosine head has none, scratch's linear head has one)."""
    last = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != f"{last}.bias"}


def point_and_twin(points, method: str, size: str) -> tuple[dict, dict]:
    point = next(p for p in points if p["method"] == method and p["size"] == size)
    return point, next(p for p in points if p["method"] == twin_name(method) and p["size"] == size)


def test_every_point_has_a_twin_of_exactly_its_parameter_count_and_architecture(setup, swept):
    points, trained = swept
    checked = []
    for point in points:
        if point["method"] not in STRATEGIES:
            continue
        _, twin = point_and_twin(points, point["method"], point["size"])
        network = expected_network(setup, point["method"], point["multiplier"])
        assert point["twin"] == twin["method"] == twin_name(point["method"])
        assert point["params"] == twin["params"] == point["twin_params"] == count(network), point["method"]
        twin_models = trained[(twin["method"], twin["size"])]
        point_models = trained[(point["method"], point["size"])]
        for (model, _), (other, _) in zip(point_models, twin_models):
            assert shapes(model) == shapes(other) == shapes(network), (point["method"], point["size"])
        checked.append((point["method"], point["size"]))
    assert len(checked) == 3 * 4 + 1  # three strategies at four widths, and the collective fine-tuned


def test_twins_start_from_random_weights_not_the_collectives(setup, swept):
    _, _, checkpoint, _, _ = setup
    _, trained = swept
    twins = {key: calls for key, calls in trained.items() if is_twin(key[0])}
    assert len(twins) == 3 * 4 + 1  # and the collective's: its conv layers under a head on their features
    for (method, size), calls in twins.items():
        multiplier = 1.0 if size == "collective" else float(Fraction(size[1:]))
        for model, target in calls:  # exactly a fresh random network of the point's architecture, the task's seed
            fresh = expected_network(setup, twin_strategy(method), multiplier, target.seed)
            state, kept = model.state_dict(), shapes(fresh)
            assert all(torch.equal(state[k], v) for k, v in fresh.state_dict().items() if k in kept), (method, size)
    point, target = trained[("learngene", "x1/8")][0]  # while the points inherit: the test can tell them apart
    fresh = expected_network(setup, "learngene", 0.125, target.seed).state_dict()
    assert torch.equal(point.state_dict()["block.conv3.conv.weight"], checkpoint["convs.conv3.conv.weight"])
    assert not torch.equal(fresh["block.conv3.conv.weight"], checkpoint["convs.conv3.conv.weight"])


def test_each_twin_sees_the_same_target_tasks_and_seeds_and_the_difference_is_paired(setup, swept):
    points, trained = swept
    for point in (p for p in points if p["method"] in STRATEGIES):
        _, twin = point_and_twin(points, point["method"], point["size"])
        if (point["method"], point["size"]) in trained and (twin["method"], twin["size"]) in trained:
            seen = [(t.task.task_id, t.seed) for _, t in trained[(point["method"], point["size"])]]
            assert seen == [(t.task.task_id, t.seed) for _, t in trained[(twin["method"], twin["size"])]]
        diffs = np.subtract(point["task_accuracies"], twin["task_accuracies"])
        assert point["vs_twin"]["mean"] == pytest.approx(diffs.mean()) and point["vs_twin"]["tasks"] == 3
        assert point["twin_mean_accuracy"] == pytest.approx(np.mean(twin["task_accuracies"]))
        assert point["vs_twin"]["ci95"] == pytest.approx(4.302652729749464 * diffs.std(ddof=1) / np.sqrt(3))


def test_a_twin_is_trained_once_per_architecture_and_the_count_is_planned(setup, swept):
    run, gene, _, targets, config = setup
    points, trained = swept
    sizes = [Size(m) for m in (0.125, 0.25, 0.5, 1.0)]
    assert sum(len(calls) for calls in trained.values()) == 26 * 3  # 6 per width, the collective and its own twin
    assert sweep_trainings(run, gene, config, sizes, []) == 26
    assert ("scratch (collective-finetune)", "collective") in trained
    plan = plan_few_shot(run, gene, config, way=WAY, shot=2, tasks=3, sizes=True, targets=targets)
    assert plan.trainings == (2 + 24) * 3  # the table's learngene and scratch are the x1 learngene and its twin


def test_the_job_key_changes_with_the_pairing_and_only_for_size_sweeps():
    job = FewShotJob(run_dir="/somewhere", run_id="run-1", config=individual_preset("fast"), sizes=True)
    older = job.identity()
    older.pop("size_pairing")  # what the key hashed when points were paired with scratch of the same width
    assert job.key != job_key("fewshot", older) and job.identity()["size_pairing"] == "twin"
    plain = dataclasses.replace(job, sizes=False)
    assert "size_pairing" not in plain.identity()


def test_sweep_summaries_pair_a_point_with_its_twin_and_older_results_with_scratch():
    from types import SimpleNamespace

    from core.jobs.sweep_tables import summary_rows

    plan = SimpleNamespace(spec=SimpleNamespace(grid_fields=([SEED], [])))
    accuracy = {"learngene": (0.6, 0.5), "scratch (learngene)": (0.4, 0.45), "scratch": (0.1, 0.2)}
    rows = [
        dict(method=m, size="x1/8", seed=seed, collective_key=f"c{seed}", mean_accuracy=a[seed])
        for m, a in accuracy.items()
        for seed in (0, 1)
    ]
    for row in rows:
        if row["method"] == "learngene":
            row["twin"] = "scratch (learngene)"
    new = {e["method"]: e for e in summary_rows(plan, rows)}
    assert new["learngene"]["twin"] == "scratch (learngene)"
    assert new["learngene"]["vs_scratch"]["mean"] == pytest.approx(0.125)  # (0.2 + 0.05) / 2: not the 0.4 to scratch
    assert "vs_scratch" not in new["scratch (learngene)"]
    older = [{k: v for k, v in r.items() if k != "twin"} for r in rows if r["method"] != "scratch (learngene)"]
    old = {e["method"]: e for e in summary_rows(plan, older)}
    assert old["learngene"]["vs_scratch"]["mean"] == pytest.approx(0.4) and "twin" not in old["learngene"]


def result_with(points: list[dict]) -> dict:
    setup = {"way": WAY, "shot": 2, "tasks": 3, "query": 4}
    return {"rows": [], "sizes": points, "setup": setup}


def test_both_charts_and_the_table_say_every_point_is_compared_with_its_own_architectures_scratch(swept, capsys):
    from matplotlib import pyplot as plt

    from core.cli.individual import _print_table
    from explorer.individual.results import ResultStore
    from explorer.individual.size_chart import draw, new_figure

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "plot_results.py"
    spec = importlib.util.spec_from_file_location("plot_results", path)
    plot_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot_results)
    points, _ = swept
    store = ResultStore()
    for p in points:
        store.add_row(p, p["size"], "setup", WAY, "conv3-conv4")
    figure = new_figure()
    draw(figure, store)
    assert any(TWIN_PHRASE in a.text for a in figure.layout.annotations)
    differences = {t.name: t for t in figure.data if t.meta == "difference"}
    front = [p for p in points if p["method"] == "front inheritance"]
    assert list(differences["front inheritance minus scratch"].y) == pytest.approx(
        [100 * p["vs_twin"]["mean"] for p in sorted(front, key=lambda p: p["params"])], abs=0.01
    )  # the page rounds to 4 digits
    fig, (top, below) = plt.subplots(2, 1)
    plot_results.draw(top, below, "glyphs", result_with(points))
    assert TWIN_PHRASE in below.get_title()
    old = [dict(p, method="scratch") if p["method"] == "scratch (weight selection)" else p for p in points]
    old = [{k: v for k, v in p.items() if not k.startswith(("twin", "vs_twin"))} for p in old if "(" not in p["method"]]
    plot_results.draw(top, below, "older", json.loads(json.dumps(result_with(old))))  # an older result still draws
    assert TWIN_PHRASE not in below.get_title()
    plt.close(fig)
    result = dict(result_with(points), selection={"label": "conv3-conv4", "task": 2})
    result["target"] = {"kind": "novel", "dataset": "glyphs", "classes": 10, "path": None}
    _print_table(result)
    assert TWIN_PHRASE in capsys.readouterr().out
