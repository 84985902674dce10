"""The explorer's promises to a student (issue 16), without a browser: state is never lost, the charts say what they
show, messages speak in page terms. Each test names one rule and breaks when the rule does."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_explorer_widgets import synthetic_log, wait_until

from core.collective.health import health_rows
from core.collective.runs import MANIFEST, METRICS, open_run
from core.data import datasets
from core.digest import file_digest
from core.events import TaskFinished
from core.jobs.cluster import job_threads
from core.jobs.execute import execute
from core.jobs.shared import THREADS_VARIABLE, shared_store, shared_threads
from core.learngene.selection import conv_layers
from explorer.app import ExplorerApp
from explorer.collective import health_figure
from explorer.collective.training_figure import MAX_CELL_TEXT, WIDTHS, width_labels
from explorer.criterion.figure import HEAT, UNHEALTHY_FILL, colour_range
from explorer.criterion.panel import CriterionHeatmap
from explorer.individual import plan
from explorer.settings import Settings

JOB_TIMEOUT = 300
FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line option such as --root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smoke_run):
    """A runs root holding two copies of the smoke run, `smoke` and `other`."""
    root = tmp_path_factory.mktemp("rules-runs")
    for name in ("smoke", "other"):
        shutil.copytree(smoke_run, root / name, ignore=shutil.ignore_patterns(".lock", "export"))
    return root


@pytest.fixture
def app(runs):
    return ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False))


def names_in(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def text_of(html: str) -> str:
    return re.sub("<[^>]+>", "", html).replace("&#x27;", "'").replace("&nbsp;", " ")


def healthy_rows(tasks: int, bad: set[int]) -> list[dict]:
    """Health rows in the stored form: `bad` tasks fit no better than chance, the others are fine."""
    return [
        dict(
            task=t,
            train_accuracy=0.2 if t in bad else 0.98,
            feature_rank=3 if t in bad else 80,
            dead_fraction={"conv1": 0.0, "fc1": 0.9 if t in bad else 0.1},
            weight_norm={},
            grad_norm={},
            first_loss=1.6,
        )
        for t in range(tasks)
    ]


# ---------------------------------------------------------------- state the page must never lose


def test_a_failed_train_keeps_the_loaded_run_and_leaves_nothing_behind(runs, tmp_path, monkeypatch):
    data = tmp_path / "data"
    glyphs = datasets.load("glyphs", image_size=32, seed=0)
    by_class = glyphs.indices_by_class()
    for c in range(24):
        (data / f"c{c:02d}").mkdir(parents=True)
        for i, image in enumerate(glyphs.images[by_class[c][:14]]):
            Image.fromarray(image[0].numpy()).save(data / f"c{c:02d}" / f"{i}.png")
    monkeypatch.setenv("LEARNGENE_DATA", str(data))
    app = ExplorerApp(runs, Settings(run="smoke"))
    map_before, selection = app.heatmap.figure.shown()["data"][HEAT]["z"], app.heatmap.selected
    app.collective.dataset.value, app.collective.preset.value = "imagefolder", "smoke"
    assert app.collective.problem is None and not app.collective.train_button.disabled
    data.rename(tmp_path / "moved")  # the data goes away after the page was opened
    before = names_in(runs)
    assert app.collective.train()
    assert app.collective.jobs.join(JOB_TIMEOUT)
    status = text_of(app.collective.status.value)
    assert "training smoke-imagefolder failed" in status and "nothing was written" in status
    assert not FLAG.search(status) and "Traceback" not in status
    assert names_in(runs) == before  # no folder holding only a .lock
    assert app.run_picker.value == "smoke" and app.run.path.name == "smoke"
    assert app.heatmap.figure.shown()["data"][HEAT]["z"] == map_before and app.heatmap.selected == selection


def test_a_train_cancelled_before_its_first_task_ends_leaves_nothing_behind_when_the_page_says_so(app, runs):
    """The worker's job stops at its next check, after Dask has already called it cancelled: the page waits for it
    to remove what it wrote before it says that nothing was written."""
    before = names_in(runs)
    app.collective.preset.value = "fast"  # a first task of seconds, not of the few tenths that a warm worker needs
    app.collective.run_name.value = "never"
    assert app.collective.train()
    wait_until(lambda: (runs / "never" / "config.json").exists())  # the job runs on a worker and has written
    app.collective.cancel_button.click()
    assert app.collective.jobs.join(JOB_TIMEOUT)
    assert "nothing was written" in app.collective.status.value
    assert names_in(runs) == before
    assert app.run.path.name == "smoke" and app.run_picker.value == "smoke"


def test_choices_that_cannot_work_here_are_disabled_with_the_reason(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNGENE_DATA", str(tmp_path))  # a data folder without CIFAR-100, wherever the tests run
    panel = ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False)).collective
    labels = dict((value, label) for label, value in panel.dataset.options)
    assert labels["cifar100"] == "cifar100 (not here)" and labels["glyphs"] == "glyphs"
    panel.dataset.value = "cifar100"
    assert panel.train_button.disabled and "cannot train here: cifar100 not found" in panel.unavailable.value
    assert not FLAG.search(text_of(panel.unavailable.value))
    panel.dataset.value, panel.preset.value = "glyphs", "paper"
    assert panel.train_button.disabled and "paper preset needs 600 images per class" in panel.unavailable.value
    before = names_in(runs)
    assert panel.train() is False and names_in(runs) == before and not panel.jobs.busy
    panel.preset.value = "smoke"
    assert not panel.train_button.disabled and panel.unavailable.value == ""


def test_applying_settings_of_the_same_run_keeps_the_results_and_another_run_clears_them_saying_so(app):
    panel = app.individual
    assert panel.start(sweep=False) and panel.jobs.join(JOB_TIMEOUT)
    kept = dict(panel.store.series)
    assert kept
    settings = json.loads(app.share.settings_text.value)
    assert app.apply_json(json.dumps(dict(settings, tau=1e-5, view="epoch")))
    assert panel.store.series == kept and "learngene" in panel.table.value
    app.run_picker.value = "other"
    assert panel.store.series == {} and "results of run smoke were cleared: another run is shown" in text_of(
        panel.status.value
    )


def test_the_selection_changes_only_when_the_user_changes_it(app, runs):
    heatmap = app.heatmap
    heatmap.threshold.set_state({"value": 0.2})
    chosen = heatmap.selected
    assert heatmap.rule == "threshold"
    app.apply_json(app.share.settings_text.value)  # the same view applied again
    assert heatmap.rule == "threshold" and heatmap.selected == chosen and heatmap.threshold.value == 0.2
    app.run_picker.value = "other"  # a new run starts from its own default selection
    assert heatmap.rule == "top-k" and heatmap.valid
    app.run_picker.value = "smoke"
    assert heatmap.rule == "top-k"


def test_the_settings_box_follows_the_view_until_the_user_edits_it(app):
    app.heatmap.tau.box.set_state({"value": "2e-6"})
    app.heatmap.choose(("conv2",))
    shown = json.loads(app.share.settings_text.value)
    assert shown["tau"] == 2e-6 and shown["layers"] == ["conv2"]
    app.share.settings_text.set_state({"value": app.share.settings_text.value.replace('"way": 5', '"way": 3')})
    app.heatmap.tau.box.set_state({"value": "1e-7"})
    assert (
        json.loads(app.share.settings_text.value)["way"] == 3
        and "you edited the settings" in app.share.settings_message.value
    )
    app.share.export_settings.click()  # discard my edits
    shown = json.loads(app.share.settings_text.value)
    assert shown["way"] == 5 and shown["tau"] == 1e-7


def test_every_field_of_the_view_is_written_by_the_panel_that_owns_it_and_heard_once(app):
    heard = []
    app.view.observe(lambda change: heard.append(change["new"]), "settings")
    h, i, c = app.heatmap, app.individual, app.collective
    moves = [
        (lambda: h.tau.box.set_state({"value": "2e-6"}), "tau", 2e-6),
        (lambda: setattr(h.absolute, "value", True), "absolute", True),
        (lambda: setattr(h.view, "value", "epoch"), "view", "epoch"),
        (lambda: setattr(h.colour_scale, "value", "fixed"), "colour_scale", "fixed"),
        (lambda: setattr(h.criterion, "value", "transfer"), "criterion", "transfer"),
        (lambda: h.choose(("conv2",)), "layers", ("conv2",)),
        (lambda: setattr(h.threshold, "value", 0.3), "threshold", 0.3),
        (lambda: setattr(i.way, "value", 3), "way", 3),
        (lambda: setattr(i.shot, "value", 5), "shot", 5),
        (lambda: setattr(i.target_tasks, "value", 7), "target_tasks", 7),
        (lambda: setattr(i.mode, "value", "freeze"), "mode", "freeze"),
        (lambda: setattr(i.baselines, "value", True), "baselines", True),
        (lambda: setattr(c.preset, "value", "smoke"), "preset", "smoke"),
        (lambda: setattr(c.dataset, "value", "imagefolder"), "dataset", "imagefolder"),
        (lambda: setattr(app.run_picker, "value", "other"), "run", "other"),
    ]
    for move, field, value in moves:
        before = len(heard)
        move()
        assert getattr(app.view.settings, field) == value, field
        assert len(heard) > before and heard[-1] == app.current_settings(), field
        assert json.loads(app.share.settings_text.value)[field] == (list(value) if field == "layers" else value)
    assert dataclasses.asdict(app.current_settings()).keys() == {f for _, f, _ in moves}
    count = len(heard)
    h.tau.box.set_state({"value": "1e-7"})
    assert len(heard) == count + 1  # one change, heard once


def test_tau_from_a_link_or_settings_is_kept_exactly(app):
    assert app.open_link("run=smoke&tau=0.001")
    assert app.heatmap.tau.value == 0.001 and app.current_settings().tau == 0.001
    app.heatmap.tau.slider.set_state({"value": 10**-3.0000000000000004})  # the browser's own rounding of 10**x
    assert app.heatmap.tau.value == 0.001 and json.loads(app.share.settings_text.value)["tau"] == 0.001
    assert "tau=0.001&" in app.current_settings().to_query() + "&"
    assert app.apply_json(json.dumps({"run": "smoke", "tau": 0.0037}))
    assert app.heatmap.tau.value == 0.0037 and "3.70e-03" in app.heatmap.figure.layout.annotations[0].text
    assert Settings.from_query(Settings(tau=0.003000000000000001).to_query()).tau == 0.003  # 3 significant digits


def test_old_links_and_settings_files_still_open():
    old = Settings.from_query("run=fast-glyphs&tau=1e-05&layers=conv4,conv5&shot=5&baselines=1")
    assert (old.tau, old.layers, old.shot, old.baselines) == (1e-5, ("conv4", "conv5"), 5, True)
    saved = {k: v for k, v in json.loads(Settings().to_json()).items() if k != "colour_scale"}
    assert Settings.from_json(json.dumps(saved)) == Settings()
    assert (Settings().way, Settings().shot, Settings().target_tasks, Settings().baselines) == (5, 1, 20, False)


# ---------------------------------------------------------------- charts that tell the story


def test_the_map_marks_where_growth_ends_and_greys_the_unhealthy_tasks():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(tasks=8), expansion_tasks=3, health=healthy_rows(8, {5, 6}))
    assert heatmap.unhealthy == (False,) * 5 + (True, True, False)
    shapes = heatmap.figure.layout.shapes
    grey = [(s.x0, s.x1) for s in shapes if s.type == "rect" and s.fillcolor == UNHEALTHY_FILL]
    assert grey == [(4.5, 5.5), (5.5, 6.5)]
    assert [s.x0 for s in shapes if s.type == "line"] == [2.5]
    notes = [a.text for a in heatmap.figure.layout.annotations]
    assert "growth ends" in notes and "grey: network unhealthy" in notes
    heatmap.view.value = "epoch"  # the same task columns in the epoch view
    assert [(s.x0, s.x1) for s in heatmap.figure.layout.shapes if s.type == "rect"] == grey


def test_live_task_health_greys_the_map_as_training_goes():
    heatmap = CriterionHeatmap()
    heatmap.begin_live(synthetic_log(tasks=3), expansion_tasks=1, tau=1e-4)
    for row in healthy_rows(3, {2}):
        heatmap.observe(TaskFinished(row["task"], 3, 0.5, 0.5, 0.5, {}, {k: v for k, v in row.items() if k != "task"}))
    heatmap.redraw()
    assert heatmap.unhealthy == (False, False, True)
    assert [s.x0 for s in heatmap.figure.layout.shapes if s.type == "rect"] == [1.5]


def test_the_colour_scale_is_fixed_on_request_and_never_negative():
    assert colour_range(np.zeros((3, 4)), "fit") == (0.0, 1.0)
    assert colour_range(np.array([[0.1, np.nan], [0.3, 0.2]]), "fit") == (0.0, 0.3)
    assert colour_range(np.array([[0.1, 0.3]]), "fixed") == (0.0, 1.0)
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1)
    heatmap.tau.slider.set_state({"value": 1e-6})
    fitted = heatmap.figure.data[HEAT].zmax
    assert heatmap.figure.data[HEAT].zmin == 0.0 and fitted == pytest.approx(np.nanmax(heatmap._per_task))
    heatmap.colour_scale.value = "fixed"
    assert heatmap.figure.data[HEAT].zmax == 1.0 and fitted < 1.0
    heatmap.tau.slider.set_state({"value": 1e-3})
    assert (heatmap.figure.data[HEAT].zmin, heatmap.figure.data[HEAT].zmax) == (0.0, 1.0)


def test_the_page_says_what_score_bars_the_dashed_line_grey_columns_and_fc_layers_are(app):
    page = text_of(" ".join(w.value for w in app.heatmap.widget.children if hasattr(w, "value")))
    for words in ("Score bars", "dashed line", "fc layers", "cannot be chosen", "Grey columns", "not read"):
        assert words in page
    assert "must not be read as stable layers" in text_of(health_figure.EXPLANATION)


def test_the_health_chart_shows_training_accuracy_rank_and_dead_units_per_task(app, runs):
    run = open_run(runs / "smoke")
    rows = health_rows(run.metrics())
    shown = {t["name"]: t for t in app.collective.health_figure.shown()["data"]}
    accuracy, rank = shown["training accuracy"], shown["feature rank (share of task 0's)"]
    assert accuracy["y"] == [r["train_accuracy"] for r in rows] and len(rank["x"]) == run.config.tasks
    assert rank["customdata"] == [r["feature_rank"] for r in rows]
    dead = shown["dead units"]
    assert dead["y"] == list(rows[0]["dead_fraction"]) and len(dead["z"][0]) == run.config.tasks
    assert app.collective.health_figure.widget.layout.display == "" and app.collective.health_help.layout.display == ""
    health_figure.draw(app.collective.health_figure, healthy_rows(6, {4}))
    greys = [s for s in app.collective.health_figure.layout.shapes if s.x0 == 3.5]
    assert len(greys) == 2  # both charts


def test_a_run_from_before_health_was_recorded_says_so(runs, tmp_path):
    old = tmp_path / "runs" / "old"
    shutil.copytree(runs / "smoke", old)
    lines = [json.loads(line) for line in (old / METRICS).read_text().splitlines()]
    (old / METRICS).write_text("".join(json.dumps({k: v for k, v in r.items() if k != "health"}) + "\n" for r in lines))
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["files"][METRICS] = file_digest(old / METRICS)
    (old / MANIFEST).write_text(json.dumps(manifest))
    app = ExplorerApp(old.parent, Settings(run="old"))
    assert app.run.path.name == "old" and app.heatmap.unhealthy == ()
    figure = app.collective.health_figure
    assert figure.widget.layout.display == "none" and "before health was recorded" in figure.note.value


def test_every_layer_width_is_a_visible_row_of_the_widths_map(app, runs):
    run = open_run(runs / "smoke")
    widths = app.collective.figure.shown()["data"][WIDTHS]
    assert widths["type"] == "heatmap" and widths["y"] == list(conv_layers(run.spec().layer_names()))
    assert all(len(row) == run.config.tasks and None not in row for row in widths["z"])
    growth = [s for s in app.collective.figure.layout.shapes if s.xref == "x3"]
    assert [s.x0 for s in growth] == [run.config.expansion_tasks - 0.5]


def test_width_labels_never_crowd_each_other_and_short_runs_label_every_cell():
    forty = [[16, 32, 48, 48, 64] + [64] * 30 + [80, 96, 96, 96, 96]]
    shown = [i for i, text in enumerate(width_labels(forty)[0]) if text]
    gap = math.ceil(40 / MAX_CELL_TEXT)
    assert shown[0] == 0 and all(b - a >= gap for a, b in zip(shown, shown[1:]))
    assert {width_labels(forty)[0][i] for i in shown} <= {str(v) for v in forty[0]} and len(shown) >= 2
    assert width_labels([[16, 16, 32]]) == [["16", "16", "32"]]


# ---------------------------------------------------------------- first ten minutes


def test_export_offers_download_links_where_voila_serves_the_run(runs, tmp_path, monkeypatch):
    shutil.copytree(runs / "smoke", tmp_path / "served" / "runs" / "copy")
    app = ExplorerApp(tmp_path / "served" / "runs", Settings(run="copy"))
    monkeypatch.setenv("VOILA_BASE_URL", "/base/")
    monkeypatch.setenv("LEARNGENE_SERVED_ROOT", str(tmp_path / "served"))
    paths = app.export()
    links = re.findall(r"href='([^']+)' download='([^']+)'", app.share.export_message.value)
    assert sorted(name for _, name in links) == sorted(p.name for p in paths)
    view = paths[0].parent.name
    assert view.startswith("view-") and all(p.parent.name == view for p in paths)
    assert (f"/base/voila/files/runs/copy/export/{view}/criterion.csv", "criterion.csv") in links
    monkeypatch.setenv("LEARNGENE_SERVED_ROOT", str(tmp_path / "elsewhere"))
    app.export()
    assert "href=" not in app.share.export_message.value and "make explore" in app.share.export_message.value


def test_a_page_on_the_servers_cluster_gives_each_job_the_threads_of_the_servers_layout(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    monkeypatch.setenv(THREADS_VARIABLE, "2")  # explorer.server with one worker on two cores
    assert shared_threads() == 2
    for unusable in ("0", "two", ""):
        monkeypatch.setenv(THREADS_VARIABLE, unusable)
        assert shared_threads() == 1  # another cluster, layout unknown: one thread per job
    monkeypatch.delenv(THREADS_VARIABLE)
    assert shared_threads() == 1


def test_a_page_job_takes_its_threads_from_the_engine_layout_or_its_run_never_from_the_load(
    short_run, monkeypatch, tmp_path
):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    idle = shared_threads()
    cores = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.3)
        busy = shared_threads()  # every core busy: a count guessed from the load would differ
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert busy == idle == job_threads(None, None, None)  # workers x threads = cores
    assert shared_threads(short_run) == open_run(short_run).threads  # a resumed run keeps its own count
    job = plan.prepare(
        open_run(short_run), ("conv3", "conv4"), way=2, shot=1, tasks=1, freeze=False, baselines=False, sweep=False
    )
    fewshot = dataclasses.replace(job.fewshot_job(idle), threads=3)
    before, during = torch.get_num_threads(), []
    execute(fewshot, shared_store(tmp_path), [lambda e: during.append(torch.get_num_threads())])
    assert set(during) == {3} and torch.get_num_threads() == before
