"""The transfer criterion: nearest-centroid accuracy of each layer's pooled features on open-world episodes, recorded
per layer and task during training, computed from checkpoints for older runs, selectable and shown on the map."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, SHORT

from core.collective.config import preset
from core.collective.criterion import CriterionLog, EpochCriterion
from core.collective.histogram import NBINS
from core.collective.runs import METRICS, open_run
from core.collective.training import train_collective
from core.collective.transfer import OpenWorldProbe, held_out_classes, nearest_centroid_accuracy, open_world_probe
from core.collective.transfer_runs import computed_rows, recorded_rows, run_accuracies
from core.data import datasets
from core.digest import file_digest
from core.events import Cancelled, TaskFinished
from core.learngene.selection import conv_layers, select_for_run
from explorer.app import ExplorerApp
from explorer.criterion.figure import HEAT, SCORES
from explorer.criterion.panel import CriterionHeatmap
from explorer.settings import Settings


def one_episode(way: int, shot: int, query: int) -> OpenWorldProbe:
    """One episode over images 0..way*(shot+query)-1: each class's supports first, then its queries."""
    per = shot + query
    support = [c * per + i for c in range(way) for i in range(shot)]
    queries = [c * per + shot + i for c in range(way) for i in range(query)]
    return OpenWorldProbe(
        classes=tuple(range(way)),
        images=torch.arange(way * per),
        support=torch.tensor([support]),
        support_labels=torch.arange(way).repeat_interleave(shot),
        query=torch.tensor([queries]),
        query_labels=torch.arange(way).repeat_interleave(query),
    )


def test_nearest_centroid_accuracy_has_the_known_answer():
    # 2-way, 2-shot, 2 queries. Class 0's supports (1,0) and (0,1) average to the diagonal; class 1's are (1, 0.1).
    # Query 0a (0.6, 0.8) is nearest to class 0's centroid by cosine (0.99 against 0.68) but not to its first support
    # (0.60); query 0b (9, 1) is class 1's direction, scaled up (a wrong answer, whatever its length); class 1's
    # queries (1, 0) and (5, 0.4) are right. 3 of 4 right.
    probe = one_episode(way=2, shot=2, query=2)
    features = torch.tensor([[1, 0], [0, 1], [0.6, 0.8], [9, 1], [1, 0.1], [1, 0.1], [1, 0], [5, 0.4]])
    assert nearest_centroid_accuracy(features, probe, probe.support, probe.query) == pytest.approx(0.75)


def test_the_episodes_use_only_open_world_classes_the_stream_never_trains_on_fixed_by_the_seed():
    config = preset("smoke")
    imageset = datasets.load(config.dataset, image_size=config.image_size, seed=config.seed)
    division, stream = config.stream(imageset)
    classes = held_out_classes(division, stream)
    used = {c for task in stream for c in task.classes}
    assert set(classes) <= set(division.open_world) and not set(classes) & (used | set(division.novel))
    assert 5 <= len(classes) < len(division.open_world)  # the stream does take some open-world classes
    probe = open_world_probe(imageset, classes, config.seed)
    labels = imageset.labels[probe.images]
    for support, query in zip(probe.support, probe.query):
        assert not set(support.tolist()) & set(query.tolist())
        s_classes, q_classes = labels[support], labels[query]
        assert set(s_classes.tolist()) == set(q_classes.tolist()) and len(set(s_classes.tolist())) == probe.way
        # a support and a query with the same episode label show the same class
        for k in range(probe.way):
            assert s_classes[probe.support_labels == k].unique().tolist() == (
                q_classes[probe.query_labels == k].unique().tolist()
            )
    again = open_world_probe(imageset, classes, config.seed)
    assert torch.equal(again.images, probe.images) and torch.equal(again.query, probe.query)
    other = open_world_probe(imageset, classes, config.seed + 1)
    assert not torch.equal(other.images[other.support], probe.images[probe.support])


def test_training_records_every_layer_and_task_and_a_resumed_run_records_the_same(short_run, tmp_path):
    run = open_run(short_run)
    rows = recorded_rows(run)
    names = run.spec().layer_names()
    assert sorted(rows) == list(range(SHORT["tasks"]))
    assert all(set(row) == set(names[:-1]) for row in rows.values())  # every layer with features; not the head
    assert all(0 <= v <= 1 for row in rows.values() for v in row.values())
    seen = []
    with pytest.raises(Cancelled):
        train_collective(
            preset("smoke", **SHORT),
            tmp_path / "r",
            listeners=[seen.append],
            should_stop=lambda: any(isinstance(e, TaskFinished) for e in seen),
        )
    assert sorted(recorded_rows(open_run(tmp_path / "r"))) == [0]
    train_collective(preset("smoke", **SHORT), tmp_path / "r", resume=True)
    assert recorded_rows(open_run(tmp_path / "r")) == rows


def test_a_run_without_the_record_gets_the_same_values_from_its_checkpoints(short_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(short_run, old, ignore=shutil.ignore_patterns(".lock"))
    lines = (old / METRICS).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        row.pop("transfer", None)
    (old / METRICS).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"][METRICS] = file_digest(old / METRICS)
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert recorded_rows(open_run(old)) == {}
    recorded = run_accuracies(open_run(short_run))
    np.testing.assert_allclose(run_accuracies(open_run(old)), recorded, rtol=0, atol=1e-12)
    assert computed_rows(open_run(short_run), [1])[1] == pytest.approx(recorded_rows(open_run(short_run))[1], abs=1e-9)


def independent_window(run_dir, k: int) -> tuple[tuple[str, ...], dict[str, float]]:
    """The window of k conv layers with the lowest mean open-world error over the tasks after growth, read from the
    raw metrics file (not through core's selection)."""
    config = json.loads((run_dir / "config.json").read_text())["config"]
    rows = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    tasks = [r for r in rows if r["kind"] == "task" and r["task"] >= config["expansion_tasks"]]
    convs = [f"conv{i}" for i in range(1, len(config["widths"]) + 1)]
    error = {n: float(np.mean([1 - r["transfer"][n] for r in tasks])) for n in convs}
    means = [np.mean([error[n] for n in convs[i : i + k]]) for i in range(len(convs) - k + 1)]
    best = int(np.argmin(means))
    return tuple(convs[best : best + k]), error


def test_selecting_by_the_transfer_criterion_picks_the_window_of_lowest_open_world_error(smoke_run, tmp_path):
    run = open_run(smoke_run)
    window, error = independent_window(smoke_run, 2)
    chosen = select_for_run(run, criterion="transfer", top_k=2)
    assert chosen.layers == window and chosen.scores.criterion == "transfer"
    for name in conv_layers(run.spec().layer_names()):
        assert chosen.scores.of(name)[0] == pytest.approx(error[name], abs=1e-9)
    ordered = sorted(error, key=error.get)
    level = (error[ordered[0]] + error[ordered[1]]) / 2
    picked = select_for_run(run, criterion="transfer", threshold=level)
    assert picked.layers == (ordered[0],)
    out = tmp_path / "gene.safetensors"
    cmd = [sys.executable, "-m", "core.cli", "extract", "--run-dir", str(smoke_run), "--criterion", "transfer"]
    done = subprocess.run(cmd + ["--top-k", "2", "--out", str(out), "--json"], capture_output=True, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["layers"] == list(window)


def heat_z(heatmap: CriterionHeatmap) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in heatmap.figure.data[HEAT].z], dtype=float)


def random_log(tasks: int) -> CriterionLog:
    """A criterion log of conv1..conv6 + fc1 with one epoch per task of random fractions."""
    names = tuple(f"conv{i}" for i in range(1, 7)) + ("fc1",)
    log = CriterionLog.empty(names, 1e-4, 1)
    rng = np.random.default_rng(0)
    for t in range(tasks):
        row = rng.random(len(names))
        log.record(t, 0, EpochCriterion(names, row, row, np.zeros((len(names), 2, NBINS)), np.zeros(len(names)), 1))
    return log


def test_the_map_shows_the_transfer_criterion_with_the_same_threshold_and_layer_toggles():
    log = random_log(tasks=4)
    errors = np.random.default_rng(1).random((4, len(log.layer_names)))
    errors[:, -1] = np.nan  # a layer without features (as the head) shows no value
    heatmap = CriterionHeatmap()
    heatmap.set_log(log, expansion_tasks=1, transfer=lambda: errors)
    paper = heat_z(heatmap)
    heatmap.criterion.value = "transfer"
    np.testing.assert_allclose(heat_z(heatmap), errors.T)
    assert not np.allclose(paper, errors.T, equal_nan=True)
    assert "Open-world" in heatmap.figure.layout.annotations[0].text
    expected = np.append(errors[1:, :-1].mean(axis=0), np.nan)  # over the tasks after growth (here from task 1)
    bars = np.array([np.nan if x is None else x for x in heatmap.scores_figure.data[SCORES].x], dtype=float)
    np.testing.assert_allclose(bars, expected)
    convs = log.layer_names[:-1]
    level = sorted(expected[:-1])[2]
    heatmap.threshold.value = level
    picked = tuple(n for n, s in zip(convs, expected) if s <= level)
    assert heatmap.rule == "threshold" and heatmap.selected == picked
    assert tuple(b.description for b in heatmap.layer_buttons.children if b.value) == picked
    heatmap.layer_buttons.children[0].value = not heatmap.layer_buttons.children[0].value
    assert heatmap.rule == "manual"
    heatmap.criterion.value = "paper"
    np.testing.assert_allclose(heat_z(heatmap), paper)


def test_the_explorer_shows_a_runs_recorded_transfer_criterion_and_keeps_the_choice_in_its_settings(runs):
    app = ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False))
    names = open_run(runs / "smoke").spec().layer_names()
    rows = [json.loads(line) for line in (runs / "smoke" / METRICS).read_text().splitlines()]
    expected = np.array(
        [[1 - r["transfer"][n] if n in r["transfer"] else np.nan for n in names] for r in rows if r["kind"] == "task"]
    )
    app.heatmap.criterion.value = "transfer"
    np.testing.assert_allclose(heat_z(app.heatmap), expected.T, rtol=0, atol=1e-12)
    assert app.current_settings().criterion == "transfer"
    app.apply(Settings(run="smoke", criterion="paper"))
    assert app.heatmap.criterion.value == "paper" and "Share of" in app.heatmap.figure.layout.annotations[0].text
