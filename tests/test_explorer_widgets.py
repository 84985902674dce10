"""Explorer widgets without a browser: set values, check figures, selections, messages, settings and jobs."""

import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from core.collective.criterion import CriterionLog, EpochCriterion
from core.collective.histogram import NBINS, fraction_from_hist
from core.collective.run_folders import resolve_run
from core.collective.runs import open_run
from core.errors import LearngeneError
from core.events import EpochEnded
from core.learngene.selection import select_for_run
from explorer.app import ExplorerApp
from explorer.criterion.figure import HEAT, OUTLINE, SCORES, THRESHOLD
from explorer.criterion.panel import CriterionHeatmap
from explorer.individual.results import MEASURED, reading_html
from explorer.jobs import JobRunner
from explorer.settings import Settings
from explorer.widgets.live_figure import MIMETYPE, LiveFigure
from explorer.widgets.outcome import one_line
from explorer.widgets.throttle import Throttle

JOB_TIMEOUT = 300


@pytest.fixture
def app(runs):
    return ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False))


def wait_until(condition, timeout=JOB_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def synthetic_log(convs=6, tasks=4, epochs=2, seed=0):
    """A criterion log of a conv1..convN + fc1 network whose gradients spread over every histogram bin."""
    rng = np.random.default_rng(seed)
    names = tuple(f"conv{i}" for i in range(1, convs + 1)) + ("fc1",)
    log = CriterionLog.empty(names, 1e-4, epochs)
    for t in range(tasks):
        for e in range(epochs):
            hist = rng.random((len(names), 2, NBINS))
            hist /= hist.sum(axis=(1, 2), keepdims=True)
            signed, absolute = (fraction_from_hist(hist, log.tau, absolute=a) for a in (False, True))
            log.record(t, e, EpochCriterion(names, signed, absolute, hist, np.zeros(len(names)), 1))
    return log


def heat_z(heatmap):
    return np.array([[np.nan if v is None else v for v in row] for row in heatmap.figure.data[HEAT].z], dtype=float)


# ---------------------------------------------------------------- heatmap


def test_the_map_opens_at_the_runs_recorded_tau_with_its_exact_fractions(app, runs):
    log = open_run(runs / "smoke").criterion()
    assert app.heatmap.tau.value == log.tau
    np.testing.assert_allclose(heat_z(app.heatmap), log.per_task().T, rtol=1e-12)


def test_moving_tau_recomputes_the_map_from_the_stored_histograms(app, runs):
    log = open_run(runs / "smoke").criterion()
    app.heatmap.tau.value = 1e-3
    before = heat_z(app.heatmap)
    app.heatmap.tau.value = 1e-8
    after = heat_z(app.heatmap)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, log.per_task(1e-8).T, rtol=1e-12)


def test_absolute_switch_shows_the_absolute_counts_which_are_at_least_the_signed_ones(app, runs):
    log = open_run(runs / "smoke").criterion()
    tau = float(app.heatmap.tau.value)
    signed = heat_z(app.heatmap)
    np.testing.assert_allclose(signed, log.per_task(tau).T, rtol=1e-12)
    app.heatmap.absolute.value = True
    absolute = heat_z(app.heatmap)
    np.testing.assert_allclose(absolute, log.per_task(tau, absolute=True).T, rtol=1e-12)
    assert np.all(absolute >= signed - 1e-12) and np.any(absolute > signed + 1e-6)
    assert "|g|" in app.heatmap.figure.layout.annotations[0].text


def test_epoch_view_shows_one_column_per_epoch_with_exact_hover_values(app, runs):
    config = open_run(runs / "smoke").config
    app.heatmap.view.value = "epoch"
    heat = app.heatmap.figure.data[HEAT]
    assert len(heat.x) == config.tasks * config.epochs
    assert "epoch 1" in heat.text[0][1] and "fraction" in heat.text[0][1]


def test_threshold_marks_exactly_the_conv_layers_scoring_at_most_it():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1)
    scores = dict(zip(heatmap.log.layer_names, heatmap.scores))
    level = sorted(scores[f"conv{i}"] for i in range(1, 7))[1]
    heatmap.threshold.value = 0.0
    assert heatmap.rule == "threshold" and heatmap.selected == () and "no layer is selected" in heatmap.message.value
    heatmap.threshold.value = level
    expected = tuple(
        n for n in heatmap.log.layer_names if n.startswith("conv") and scores[n] <= heatmap.threshold.value
    )
    assert heatmap.rule == "threshold" and heatmap.selected == expected
    pressed = tuple(b.description for b in heatmap.layer_buttons.children if b.value)
    assert pressed == expected
    bars = heatmap.scores_figure.data[SCORES].marker.color
    assert [c != bars[-1] for c in bars[:-1]] == [n in expected for n in heatmap.log.layer_names[:-1]]
    assert list(heatmap.scores_figure.data[THRESHOLD].x) == [level, level]  # the dashed line, under this rule only


def test_default_selection_is_the_command_lines_window(app, runs):
    default = select_for_run(open_run(runs / "smoke"))
    assert app.heatmap.rule == "top-k" and app.heatmap.selected == default.layers
    assert f"{default.label} (most stable window)" in app.heatmap.selection_label.value
    assert not app.heatmap.scores_figure.data[THRESHOLD].x  # no threshold line before the user moves the slider


def test_default_selection_is_the_most_stable_window_framed_on_the_map():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1, top_k=3)
    assert heatmap.rule == "top-k" and heatmap.valid and len(heatmap.selected) == 3
    rows = [heatmap.log.layer_names.index(n) for n in heatmap.selected]
    outline_y = [y for y in heatmap.figure.data[OUTLINE].y if y is not None]
    assert min(outline_y) == rows[0] - 0.5 and max(outline_y) == rows[-1] + 0.5


def test_code_never_moves_the_threshold_so_the_rule_stays_until_the_user_moves_it():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1)
    before = (heatmap.threshold.value, heatmap.threshold.max, heatmap.selected)
    for tau in (2e-4, 1e-9, 1e-2, 1e-4):
        heatmap.tau.box.set_state({"value": f"{tau:g}"})  # as the browser sends a typed value
        heatmap.absolute.value = not heatmap.absolute.value
    heatmap.set_log(synthetic_log(seed=1), expansion_tasks=2)
    heatmap.begin_live(None, expansion_tasks=1, tau=1e-4)
    assert heatmap.rule == "top-k" and (heatmap.threshold.value, heatmap.threshold.max) == before[:2]
    heatmap.threshold.set_state({"value": heatmap.threshold.value})  # the browser echoing the value it has
    assert heatmap.rule == "top-k"
    heatmap.threshold.set_state({"value": 0.3})
    assert heatmap.rule == "threshold"


def test_toggling_a_gap_shows_cores_message_and_offers_the_nearest_block():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1)
    for button in heatmap.layer_buttons.children:
        button.value = button.description in ("conv2", "conv4")
    assert heatmap.rule == "manual" and not heatmap.valid and heatmap.learngene is None
    assert "not contiguous" in heatmap.message.value and "conv2-conv4" in heatmap.message.value
    assert heatmap.use_nearest.layout.display == "" and heatmap.use_nearest.description == "use conv2-conv4"
    heatmap.use_nearest.click()
    assert heatmap.learngene == ("conv2", "conv3", "conv4") and heatmap.message.value == ""


def test_a_head_layer_a_gap_or_nothing_is_refused_with_a_message_and_a_front_block_is_valid():
    heatmap = CriterionHeatmap()
    heatmap.set_log(synthetic_log(), expansion_tasks=1)
    heatmap.choose(("conv6", "fc1"))
    assert "fc1 is a head layer" in heatmap.message.value and heatmap.learngene is None
    heatmap.choose(("conv1", "conv2"))
    assert heatmap.learngene == ("conv1", "conv2") and heatmap.message.value == ""
    heatmap.choose(("conv1", "conv3"))
    assert "not contiguous" in heatmap.message.value and heatmap.learngene is None
    heatmap.choose(())
    assert "no layer is selected" in heatmap.message.value
    assert "Traceback" not in heatmap.message.value


def test_live_epochs_fill_the_map_task_by_task_at_the_run_tau_and_at_a_moved_one(runs):
    log = open_run(runs / "smoke").criterion()
    heatmap = CriterionHeatmap()
    heatmap.begin_live(None, expansion_tasks=2, tau=log.tau)
    assert heatmap.tau.value == log.tau
    for t in range(log.tasks):
        heatmap.tau.value = log.tau if t % 2 == 0 else 1e-4  # odd tasks read their epochs from the histograms
        for e in range(log.epochs):
            heatmap.observe(
                EpochEnded(
                    t, e, log.epochs, 1.0, 0.5, log.layer_names, log.signed[t, e], log.absolute[t, e], log.hist[t, e]
                )
            )
            heatmap.redraw()  # every epoch: the map's kept histogram tails must follow the log
            expected = heatmap.log.per_task(heatmap.tau.value)
            np.testing.assert_allclose(heat_z(heatmap), expected.T, rtol=1e-12)
        assert len(heatmap.figure.data[HEAT].x) == t + 1
    np.testing.assert_allclose(heat_z(heatmap), log.per_task(heatmap.tau.value).T, rtol=1e-12)
    heatmap.tau.value = 1e-6
    np.testing.assert_allclose(heat_z(heatmap), log.per_task(1e-6).T, rtol=1e-12)


# ---------------------------------------------------------------- settings and links


def test_settings_survive_a_json_round_trip_and_reject_bad_values():
    settings = Settings(
        run="smoke",
        tau=3e-6,
        absolute=True,
        view="epoch",
        threshold=0.2,
        layers=("conv2", "conv3"),
        way=3,
        shot=2,
        mode="freeze",
    )
    assert Settings.from_json(settings.to_json()) == settings
    with pytest.raises(LearngeneError, match="not valid JSON"):
        Settings.from_json("{tau: 1")
    with pytest.raises(LearngeneError, match="tau"):
        Settings.from_json('{"tau": 100}')
    with pytest.raises(LearngeneError, match="wrong type"):
        Settings.from_json('{"way": "five"}')
    with pytest.raises(LearngeneError, match="unknown settings"):
        Settings.from_json('{"colour": "red"}')


def test_query_strings_set_the_view_and_the_current_view_links_back_to_itself(app):
    settings = Settings.from_query("run=smoke&tau=1e-5&layers=conv2,conv3&absolute=1&way=3&voila-theme=dark")
    assert settings == Settings(run="smoke", tau=1e-5, layers=("conv2", "conv3"), absolute=True, way=3)
    app.heatmap.tau.value = 2e-6
    app.heatmap.choose(("conv3",))
    assert Settings.from_query(app.current_settings().to_query()) == app.current_settings()
    with pytest.raises(LearngeneError, match="unknown link parameter"):
        Settings.from_query("runn=smoke")


@pytest.mark.parametrize("name", ["../smoke", "/etc", "smoke/../../x", ""])
def test_run_names_from_links_cannot_escape_the_runs_root(runs, name):
    with pytest.raises(LearngeneError, match="runs root"):
        Settings.from_query(f"run={name}") if name else resolve_run(runs, name)
    with pytest.raises(LearngeneError):
        resolve_run(runs, name)


def test_a_symlink_out_of_the_runs_root_is_refused(runs, tmp_path):
    (runs / "escape").symlink_to(tmp_path)
    try:
        with pytest.raises(LearngeneError, match="outside the runs root"):
            resolve_run(runs, "escape")
    finally:
        (runs / "escape").unlink()


def test_a_bad_link_shows_an_inline_message_and_the_app_still_opens(runs):
    app = ExplorerApp(runs)
    assert app.open_link("run=..%2F..%2Fetc") is False
    assert "link ignored" in app.message.value and "runs root" in app.message.value
    assert app.run is not None and app.run.path.name == "smoke"
    assert app.open_link("?run=smoke&view=epoch") and app.heatmap.view.value == "epoch"


def test_pasted_settings_apply_to_every_control_and_bad_ones_explain_themselves(app):
    assert not app.apply_json('{"way": 1}')
    assert "way 1 is out of range" in app.share.settings_message.value
    assert app.apply_json(json.dumps({"run": "smoke", "tau": 1e-6, "way": 4, "layers": ["conv3"], "view": "epoch"}))
    assert app.heatmap.tau.value == pytest.approx(1e-6) and app.individual.way.value == 4
    assert app.heatmap.selected == ("conv3",) and app.heatmap.view.value == "epoch"
    assert not app.apply_json('{"run": "missing"}')
    assert "no run directory" in app.message.value and "could not be opened" in app.share.settings_message.value


def test_an_empty_runs_root_offers_one_thing_to_do_and_placeholders_instead_of_empty_axes(tmp_path):
    app = ExplorerApp(tmp_path)
    assert app.first_screen and app.welcome.layout.display == "" and app.run is None
    assert app.collective.controls.layout.display == "none"  # the welcome button is the one call to action
    hidden = (app.heatmap.widget, app.individual.widget, app.share.widget)
    assert all(part.layout.display == "none" for part in hidden)
    for figure in (app.collective.figure, app.collective.health_figure, app.heatmap.figure, app.individual.figure):
        assert figure.widget.layout.display == "none" and figure.note.layout.display == "" and figure.note.value
    assert (
        "about 3 min when the machine is idle" in app.welcome.children[0].value
        and "2-core" in app.welcome.children[0].value
    )
    app.more_options.click()
    assert app.collective.controls.layout.display == "" and app.first_screen
    assert app.individual.start(sweep=False) is False
    assert "no finished run" in app.individual.status.value


def test_a_start_cancelled_on_the_first_screen_goes_back_to_the_first_screen(tmp_path):
    app = ExplorerApp(tmp_path)
    app.collective.preset.value = "smoke"
    assert app.collective.train() and not app.first_screen
    app.collective.cancel_button.click()
    assert app.collective.jobs.join(JOB_TIMEOUT)
    assert "nothing was written" in app.collective.status.value
    assert app.first_screen and app.welcome.layout.display == "" and app.heatmap.widget.layout.display == "none"


# ---------------------------------------------------------------- jobs in the worker thread


def traces(figure, kind):
    return {t.name: t for t in figure.data if t.meta == kind}


def test_run_adds_points_per_method_and_a_second_click_starts_no_second_job(app):
    panel = app.individual
    panel.target_tasks.value = 2
    assert panel.start(sweep=False)
    assert panel.run_button.disabled and not panel.cancel_button.disabled
    assert panel.start(sweep=False) is False and "already running" in panel.status.value
    assert panel.jobs.join(JOB_TIMEOUT)
    assert not panel.run_button.disabled and panel.cancel_button.disabled
    points = traces(panel.figure, "accuracy")
    assert list(points) == ["learngene", "scratch"]
    for trace in points.values():
        assert len(trace.x) == 1 and trace.x[0] > 0 and 0 <= trace.y[0] <= 1
    chance = traces(panel.figure, "chance")["chance (1/5)"]
    assert list(chance.y) == [0.2, 0.2]
    rows = panel.store.rows()
    learngene, scratch = rows[0], rows[1]
    assert (learngene["method"], scratch["method"]) == ("learngene", "scratch")  # learngene first
    diff = traces(panel.figure, "difference")["learngene minus scratch"]
    expected = np.mean(
        np.subtract(
            panel.store.series[("learngene", "default", learngene["setup"])].accuracies,
            panel.store.series[("scratch", "default", learngene["setup"])].accuracies,
        )
    )
    assert diff.y[0] == pytest.approx(100 * expected) and learngene["vs_scratch"]["tasks"] == 2
    assert panel.progress.value == panel.progress.max == 4
    assert "scratch: the learngene model&#x27;s shape, every weight random" in panel.table.value
    assert "finished" in panel.status.value


def test_cancel_mid_run_keeps_finished_points_and_reenables_the_buttons(app):
    panel = app.individual
    panel.target_tasks.value = 3
    assert panel.start(sweep=False)
    wait_until(lambda: any(s.accuracies for s in panel.store.series.values()))
    panel.cancel_button.click()
    assert panel.jobs.join(JOB_TIMEOUT)
    assert not panel.run_button.disabled and not panel.sweep_button.disabled and panel.cancel_button.disabled
    assert "cancelled" in panel.status.value
    kept = [s for s in panel.store.series.values() if s.accuracies]
    assert kept and all(s.status in ("done", "cancelled") for s in kept)
    assert sum(len(t.x) for t in traces(panel.figure, "accuracy").values()) == len(kept)


def test_size_sweep_draws_one_curve_per_strategy_over_20x_in_size_with_the_collective_as_reference(app):
    panel = app.individual
    assert panel.start(sweep=True) and panel.jobs.join(JOB_TIMEOUT)
    assert "finished" in panel.status.value and panel.progress.value == panel.progress.max
    curves = traces(panel.figure, "accuracy")
    for name in ("learngene", "front inheritance", "weight selection", "scratch (weight selection)"):
        assert len(curves[name].x) == 4 and curves[name].mode == "lines+markers", name
        assert list(curves[name].x) == sorted(curves[name].x)
    sizes = [x for c in curves.values() for x in c.x]
    assert max(sizes) / min(sizes) >= 20
    reference = traces(panel.figure, "reference")["collective model, fine-tuned"]
    assert len(reference.x) == 1 and "collective model, fine-tuned" in reference.text[0]
    assert "chance (1/5)" in traces(panel.figure, "chance")
    differences = traces(panel.figure, "difference")
    assert (
        len(differences["weight selection minus scratch"].x) == 4
        and "scratch (weight selection) minus scratch" not in differences
    )


def test_tau_still_moves_the_map_while_a_job_runs(app):
    panel = app.individual
    panel.target_tasks.value = 2
    assert panel.start(sweep=False)
    before = heat_z(app.heatmap)
    app.heatmap.tau.value = 1e-9
    assert panel.jobs.busy
    assert not np.allclose(before, heat_z(app.heatmap))
    panel.cancel_button.click()
    assert panel.jobs.join(JOB_TIMEOUT)


def test_an_invalid_selection_stops_run_with_the_reason(app):
    app.heatmap.choose(("conv2", "conv4"))
    assert app.individual.start(sweep=False) is False
    assert "selection in panel 2" in app.individual.status.value and not app.individual.jobs.busy


def test_clear_empties_chart_and_table(app):
    panel = app.individual
    panel.store.add("learngene", "default", "5-way", 100, 1, 0.5)
    panel.clear()
    assert len(panel.figure.data) == 0 and "No results yet" in panel.table.value
    assert panel.figure.widget.layout.display == "none" and "Press <b>Run</b>" in panel.figure.note.value


def test_retraining_a_finished_run_returns_at_once_and_reloads_it(app):
    panel = app.collective
    panel.preset.value = "smoke"
    panel.run_name.value = "smoke"
    assert panel.train()
    assert panel.jobs.join(JOB_TIMEOUT)
    assert "finished" in panel.status.value and not panel.train_button.disabled and panel.cancel_button.disabled
    assert app.run is not None and app.run.path.name == "smoke"
    assert len(panel.figure.data[0].x) == app.run.config.tasks * app.run.config.epochs


def start_smoke_training(root, name):
    """An app over `root` that has started training a new smoke run called `name`."""
    app = ExplorerApp(root)
    app.collective.preset.value = "smoke"
    app.collective.run_name.value = name
    assert app.collective.train()
    return app, app.collective


def test_training_fills_the_map_live_with_a_progress_label_and_cancel_keeps_the_committed_tasks(tmp_path):
    app, panel = start_smoke_training(tmp_path, "fresh")
    labels = []
    app.heatmap.selection_label.observe(lambda change: labels.append(change["new"]), "value")
    assert panel.train() is False and "already running" in panel.status.value
    wait_until(lambda: len(app.heatmap.health) >= 2)  # two tasks committed, with their health
    assert app.run_picker.value == "fresh" and "run=fresh" in app.share.link.value  # the menu names what trains
    assert re.fullmatch(
        r"task \d+/34, epoch \d+/15 · \d+ (s|min \d+ s) so far, about \d+ (s|min \d+ s) left",
        re.sub("<[^>]+>", "", panel.progress_label.value).replace("&nbsp;", ""),
    )
    panel.cancel_button.click()
    assert panel.jobs.join(JOB_TIMEOUT)
    assert "cancelled" in panel.status.value and not panel.train_button.disabled and panel.cancel_button.disabled
    assert (
        app.run_picker.value == "fresh" and app.run is not None and 2 <= app.run.finished_tasks < app.run.config.tasks
    )
    assert app.heatmap.log.tasks == app.run.finished_tasks and app.heatmap.rule == "top-k"
    shown = [label for label in labels if label]  # empty while the live map has no epoch yet
    assert shown and all("(most stable window)" in label for label in shown)  # never switched by itself


def test_moving_tau_while_the_collective_model_trains_keeps_the_live_map_at_the_new_tau(tmp_path):
    app, panel = start_smoke_training(tmp_path, "live-tau")
    wait_until(lambda: app.heatmap.log is not None and app.heatmap.log.recorded.any())
    app.heatmap.tau.box.set_state({"value": "1e-9"})  # as the browser sends a typed value
    columns = len(app.heatmap.figure.data[HEAT].x or ())
    assert "1.00e-09" in app.heatmap.figure.layout.annotations[0].text
    wait_until(lambda: len(app.heatmap.figure.data[HEAT].x or ()) > max(columns, 1) or not panel.jobs.busy)
    panel.cancel_button.click()
    assert panel.jobs.join(JOB_TIMEOUT)
    assert app.run is not None and app.run.path.name == "live-tau"  # the trained run, shown as the user left it
    assert app.heatmap.tau.value == 1e-9 and "1.00e-09" in app.heatmap.figure.layout.annotations[0].text


def test_collective_training_refuses_a_run_name_outside_the_root(app):
    app.collective.run_name.value = "../outside"
    assert app.collective.train() is False
    assert "runs root" in app.collective.status.value and not app.collective.jobs.busy


# ---------------------------------------------------------------- export and plumbing


def test_export_writes_offline_html_figures_and_csv_tables_into_the_run(tmp_path, smoke_run):
    shutil.copytree(smoke_run, tmp_path / "copy", ignore=shutil.ignore_patterns(".lock", "export"))
    app = ExplorerApp(tmp_path, Settings(run="copy"))
    paths = app.export()
    names = sorted(p.name for p in paths)
    assert names == [
        "accuracy_vs_size.html",
        "collective.html",
        "criterion.csv",
        "criterion.html",
        "criterion_scores.html",
        "health.html",
        "settings.json",
    ]
    folder = paths[0].parent
    assert folder.parent == tmp_path / "copy" / "export" and folder.name.startswith("view-")
    html = (folder / "criterion.html").read_text()
    assert "Plotly.newPlot" in html and 'src="https://cdn' not in html and len(html) > 1_000_000
    header = (folder / "criterion.csv").read_text().splitlines()[0]
    assert header == "task,layer,tau,absolute,fraction,selected,criterion"
    assert Settings.from_json((folder / "settings.json").read_text()).run == "copy"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    app.heatmap.tau.value = app.heatmap.tau.value * 2  # another view: its own folder, the first one untouched
    other = app.export()[0].parent
    assert other != folder and {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_throttle_renders_a_burst_once_and_flushes_the_final_state():
    rendered = []
    state = {"value": 0}
    throttle = Throttle(lambda: rendered.append(state["value"]), interval=60)
    for i in range(1, 101):
        state["value"] = i
        throttle.request()
    throttle.flush()
    assert rendered == [1, 100]


def test_a_failing_render_is_reported_in_one_line_and_later_renders_still_run():
    errors, rendered = [], []

    def render():
        rendered.append(len(rendered))
        if len(rendered) == 1:
            raise ValueError("bad trace\nsecond line")

    throttle = Throttle(render, interval=0, on_error=errors.append)
    throttle.request()
    throttle.request()
    assert rendered == [0, 1] and errors == ["unexpected ValueError: bad trace"]


def test_a_job_that_cannot_start_or_fails_ends_in_one_line_messages():
    from core.collective.config import preset
    from core.jobs.spec import CollectiveJob

    outcomes = []

    def no_engine():
        raise LearngeneError("no Dask scheduler answers at tcp://nowhere:1: start one")

    jobs = JobRunner(no_engine)
    job = CollectiveJob(preset("smoke", tasks=1, epochs=1), threads=1)
    assert jobs.start(job, [], outcomes.append) and jobs.join(10)
    assert jobs.start(job, [], outcomes.append) and jobs.join(10)  # a failed start leaves the panel free
    assert [o.status for o in outcomes] == ["error", "error"]
    assert outcomes[0].message == "no Dask scheduler answers at tcp://nowhere:1: start one"
    assert not jobs.busy and one_line(ZeroDivisionError("division by zero")) == (
        "unexpected ZeroDivisionError: division by zero"
    )


def test_every_update_hands_the_page_the_whole_current_figure_even_from_other_threads():
    fig = LiveFigure(layout=dict(height=300))
    assert fig.shown()["data"] == [] and fig.widget.layout.min_height == "300px"
    with fig.updating():
        fig.add_trace(go.Scatter(x=[1.0], y=[float("nan")], name="a"))
    assert [(t["name"], t["x"], t["y"]) for t in fig.shown()["data"]] == [("a", [1.0], [None])]

    def grow(i):
        with fig.updating():
            fig.add_trace(go.Scatter(x=[float(i)], y=[0.0], name=f"t{i}"))

    threads = [threading.Thread(target=grow, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fig.widget.outputs) == 1
    assert [t["name"] for t in fig.shown()["data"]] == [t.name for t in fig.data] and len(fig.data) == 9


def test_a_live_chart_is_redrawn_in_place_once_the_page_shows_it_and_whole_after_it_was_hidden():
    fig = LiveFigure(data=[go.Scatter(x=[0.0], y=[0.0], name="loss")], layout=dict(height=300))
    fig.placeholder("nothing yet")

    def live_update(y: float) -> None:
        with fig.updating(in_place=True):
            fig.data[0].update(y=[y])

    live_update(1.0)  # drawn while hidden: the page gets a whole chart
    fig.placeholder(None)
    live_update(2.0)  # the first draw while visible is whole too: the hidden chart kept no size
    whole = fig.widget.outputs
    assert whole[0]["data"][MIMETYPE]["data"][0]["y"] == [2.0] and not fig.channel.outputs
    live_update(3.0)
    assert fig.widget.outputs is whole  # in place: the Output keeps its chart, the script redraws it
    script = fig.channel.outputs[0]["data"]["application/javascript"]
    assert "Plotly.react" in script and fig.shown()["data"][0]["y"] == [3.0]
    fig.placeholder("cancelled")
    live_update(4.0)
    assert fig.widget.outputs is not whole and fig.widget.outputs[0]["data"][MIMETYPE]["data"][0]["y"] == [4.0]


def test_the_collective_panel_redraws_its_live_charts_in_place(runs):
    app = ExplorerApp(runs, Settings(run="smoke"))
    panel = app.collective
    panel.show_run(app.run)  # the stored run's charts, drawn whole
    charts = [f.widget.outputs for f in (panel.figure, panel.health_figure, app.heatmap.figure)]
    panel._render()  # what the throttle calls while a training runs
    assert [f.widget.outputs for f in (panel.figure, panel.health_figure, app.heatmap.figure)] == charts
    for figure in (panel.figure, panel.health_figure, app.heatmap.figure):
        assert "Plotly.react" in figure.channel.outputs[0]["data"]["application/javascript"]


def test_a_link_brings_back_the_results_the_server_holds_without_training(smoke_run, tmp_path, monkeypatch):
    runs = tmp_path / "runs"  # a store of its own: no other test's size sweep of this view lies in it
    shutil.copytree(smoke_run, runs / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    app = ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False))
    panel = app.individual
    assert panel.start(sweep=False) and panel.jobs.join(JOB_TIMEOUT)
    shown = {key: list(series.accuracies) for key, series in panel.store.series.items()}
    query = app.current_settings().to_query()
    monkeypatch.setattr(JobRunner, "start", lambda *args, **kwargs: pytest.fail("opening a link started a job"))
    second = ExplorerApp(runs)
    second.open_link(query)
    assert shown and {key: list(s.accuracies) for key, s in second.individual.store.series.items()} == shown
    assert "found on the server" in second.individual.status.value
    assert "learngene" in second.individual.table.value
    other = ExplorerApp(runs)
    other.open_link(query + "&shot=2")
    assert other.individual.shot.value == 2 and not other.individual.store.series


def _results_table(heading: str) -> dict[str, list[str]]:
    """The rows of the docs/results.md table under a bold heading, by method."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()
    block = text[text.index(f"**{heading}**") :].split("\n\n")[1]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]
    return {row[0]: row[1:] for row in cells}


@pytest.mark.parametrize("dataset", ["glyphs", "Omniglot"])
def test_the_runs_reading_quotes_the_measured_gains_of_the_results_tables(dataset):
    table = _results_table(f"{dataset[0].upper() + dataset[1:]}, 5-way 1-shot")
    for method, row in (("learngene", "learngene"), ("front inheritance", "front conv1-conv4")):
        mean, half = (float(v) for v in table[row][2].split("±"))
        assert MEASURED[method][dataset] == f"{100 * mean:+.1f} ± {100 * half:.1f}"


def test_the_runs_reading_says_which_side_of_scratch_the_learngene_is_and_where_front_inheritance_is():
    learngene = {"method": "learngene", "vs_scratch": {"mean": -0.062, "ci95": 0.03, "p_value": 0.004, "tasks": 20}}
    reading = reading_html([learngene])
    assert "6.2 points below scratch on these 20 target tasks" in reading and "clear difference" in reading
    assert "tick <i>other strategies" in reading
    above = dict(learngene, vs_scratch=dict(learngene["vs_scratch"], mean=0.011, p_value=0.4))
    front = {"method": "front conv1-conv4", "vs_scratch": None}
    reading = reading_html([above, front])
    assert "1.1 points above scratch" in reading and "within the noise" in reading
    assert "rows are in the table" in reading
    assert reading_html([dict(learngene, vs_scratch=None)]) == ""
