"""The tutorials' exercise checks: right answers pass, wrong ones get a hint that never states the answer, and an
unanswered exercise (a handout run top to bottom) is reported as such. No notebook is executed here."""

import inspect
import math
from types import SimpleNamespace

import numpy as np
import pytest

from core.collective.config import preset
from core.collective.health import health_rows
from core.collective.runs import open_run
from core.learngene.extraction import extract
from core.learngene.gene import save
from core.learngene.selection import (
    block_label,
    candidates,
    default_top_k,
    layer_scores,
    run_scores,
    select_for_run,
    select_top_k,
    windows,
)
from core.tutorial import criterion_checks, individual_checks, own_data_checks, tour_checks
from core.tutorial.verdict import paired_direction

MODULES = (tour_checks, criterion_checks, individual_checks, own_data_checks)
UP = [0.62, 0.70, 0.55, 0.81, 0.66]
BASE = [0.50, 0.61, 0.47, 0.70, 0.58]  # UP minus BASE: every task 0.08 to 0.12 higher
NOISY = [0.70, 0.52, 0.61, 0.60, 0.66]  # NOISY minus BASE: +0.20 to -0.09, an interval around 0
WORDS = ("up", "down", "cannot tell")


def _rows(accuracies, scratch=BASE, layers="conv2-conv3"):
    return [
        {"method": "learngene", "layers": layers, "task_accuracies": list(accuracies)},
        {"method": "scratch", "layers": layers, "task_accuracies": list(scratch)},
    ]


def _judged(check, right, answers, *args):
    """The check's verdict on every answer: exactly `right` is correct, and no hint names it."""
    for answer in answers:
        verdict = check(answer, *args)
        assert verdict.correct == (answer == right), (answer, verdict)
        if not verdict.correct:
            assert (
                verdict.status == "wrong"
                and f"{right!r}" not in verdict.message
                and f'"{right}"' not in verdict.message
            )


def test_a_paired_direction_is_read_from_the_95_interval_of_the_per_task_differences():
    assert paired_direction(UP, BASE) == "higher" and paired_direction(BASE, UP) == "lower"
    assert paired_direction(NOISY, BASE) == "cannot tell"
    assert paired_direction([0.7], [0.5]) == "cannot tell"  # one task: no interval


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_check_reports_an_unanswered_exercise_without_touching_the_run(module):
    """A handout keeps every answer at None: each check must say so, whatever else it is given."""
    checks = [f for name, f in inspect.getmembers(module, inspect.isfunction) if name.startswith("exercise_")]
    assert checks
    for check in checks:
        verdict = check(*[None] * len(inspect.signature(check).parameters))
        assert verdict.status == "unanswered" and "no answer yet" in repr(verdict)


def test_tour_and_individual_comparisons_follow_the_students_own_tables():
    _judged(tour_checks.exercise_1_3, "up", WORDS, _rows(BASE), _rows(UP))
    _judged(tour_checks.exercise_1_3, "down", WORDS, _rows(UP), _rows(BASE))
    _judged(tour_checks.exercise_1_3, "cannot tell", WORDS, _rows(BASE), _rows(NOISY))
    longer = _rows(UP, layers="conv2-conv4")
    _judged(tour_checks.exercise_1_2, "longer", ("longer", "default", "cannot tell"), _rows(BASE), longer)
    assert not tour_checks.exercise_1_2("longer", _rows(BASE), _rows(UP)).correct  # not one layer longer
    _judged(individual_checks.exercise_3_1, "down", WORDS, _rows(UP), _rows(BASE))
    _judged(individual_checks.exercise_3_2, "task 0", ("task 0", "default", "cannot tell"), _rows(BASE), _rows(UP))


def test_the_size_and_window_checks_read_the_intervals_and_signs_of_the_students_results():
    points = [
        {"method": "learngene", "vs_twin": {"mean": 0.05, "ci95": 0.02}},
        {"method": "front inheritance", "vs_twin": {"mean": 0.05, "ci95": 0.09}},
        {"method": "weight selection", "vs_twin": {"mean": -0.04, "ci95": 0.01}},
        {"method": "scratch (learngene)", "vs_twin": None},
    ]
    assert individual_checks.exercise_3_3({"learngene"}, points).correct
    for wrong in (set(), {"front inheritance"}, {"learngene", "front inheritance"}, {"scratch"}):
        assert not individual_checks.exercise_3_3(wrong, points).correct
    study = {"correlation": {"paper": {"spearman": 0.9}, "relative": {"spearman": math.nan}}, "rows": []}
    study_5 = {
        "correlation": {"paper": {"spearman": -0.3}, "relative": {"spearman": 0.4}},
        "rows": [{"method": "conv1-conv2", "mean_accuracy": 0.7}, {"method": "conv2-conv3", "mean_accuracy": 0.8}],
    }
    right = {"paper": "flipped", "relative": "n/a"}
    assert individual_checks.exercise_3_5(right, "conv2-conv3", study, study_5).correct
    assert not individual_checks.exercise_3_5(right, "conv1-conv2", study, study_5).correct
    assert not individual_checks.exercise_3_5(
        {"paper": "same", "relative": "n/a"}, "conv2-conv3", study, study_5
    ).correct


def test_own_data_checks_count_siblings_and_read_the_estimate_and_both_tables():
    names = [f"{n}-star-{s}" for n in range(5, 9) for s in ("filled", "outline")]
    names += [f"{n}-dots" for n in range(1, 7)] + ["circle-filled", "circle-outline", "cross-filled", "cross-outline"]
    images, config = (
        SimpleNamespace(class_names=names),
        preset("smoke", dataset="imagefolder", seed=5),
    )  # a sibling is open-world
    division = config.division(names)
    seen = {names[c] for c in (*division.source, *division.open_world)}
    other = {"filled": "outline", "outline": "filled"}

    def sibling_of(name):
        shape, style = name.rsplit("-", 1)
        return f"{shape}-{other[style]}" if style in other else None

    expected = sum(sibling_of(n) in seen for n in (names[c] for c in division.novel))
    assert expected > sum(
        sibling_of(n) in {names[c] for c in division.source} for n in (names[c] for c in division.novel)
    )
    _judged(own_data_checks.exercise_4_1, expected, range(len(division.novel) + 1), config, images)

    answers = {"learngene": "cannot tell", "front inheritance": "yes"}
    assert own_data_checks.exercise_4_2(answers, _rows(NOISY), _rows(UP)).correct
    assert not own_data_checks.exercise_4_2({**answers, "learngene": "yes"}, _rows(NOISY), _rows(UP)).correct
    assert not own_data_checks.exercise_4_2({**answers, "front inheritance": "no"}, _rows(NOISY), _rows(UP)).correct

    paper, t_first, t_final = preset("paper"), 0.02, 0.08
    growth, rest = paper.expansion_tasks * (t_first + t_final) / 2, (paper.tasks - paper.expansion_tasks) * t_final
    seconds = 100 * paper.epochs * (growth + rest)
    hours_10 = seconds * 10 / paper.epochs / 3600
    assert own_data_checks.exercise_4_3(growth / (growth + rest), hours_10, seconds, t_first, t_final, paper).correct
    task_share = paper.expansion_tasks / paper.tasks
    verdict = own_data_checks.exercise_4_3(task_share, hours_10, seconds, t_first, t_final, paper)
    assert not verdict.correct and "share of the tasks" in verdict.message
    assert not own_data_checks.exercise_4_3(
        growth / (growth + rest), hours_10 * 2, seconds, t_first, t_final, paper
    ).correct


@pytest.fixture(scope="module")
def run(smoke_run):
    return open_run(smoke_run)


def test_the_parameters_gained_are_read_from_the_students_run(run):
    tasks = [m for m in run.metrics() if m["kind"] == "task"]
    gained = tasks[-1]["params"] - tasks[0]["params"]
    assert gained > 0
    _judged(tour_checks.exercise_1_1, gained, (gained - 1, gained, gained + 1), run)


def test_the_file_contents_are_read_from_the_students_learngene_file(run, tmp_path):
    path = save(extract(run, select_for_run(run)), tmp_path / "gene.safetensors")
    held = {"conv weights", "conv biases", "BatchNorm weights and biases", "BatchNorm running statistics"}
    assert tour_checks.exercise_1_4(held, path).correct
    for wrong in (held - {"BatchNorm running statistics"}, held | {"source images"}, held | {"optimiser state"}):
        verdict = tour_checks.exercise_1_4(wrong, path)
        assert not verdict.correct and "running" not in verdict.message and "images" not in verdict.message


def _window_pick(run, matrix, names):
    """The default-length window with the lowest mean over the post-growth tasks, computed here with numpy alone."""
    post = [t for t in range(matrix.shape[0]) if t >= run.config.expansion_tasks and np.isfinite(matrix[t]).any()]
    means = dict(zip(names, np.nanmean(matrix[post], axis=0)))
    blocks = windows(names, default_top_k(run))
    return block_label(min(blocks, key=lambda b: np.mean([means[n] for n in b])))


def test_the_block_checks_accept_exactly_the_block_the_students_run_selects(run):
    labels = [block_label(b) for b in windows(run.spec().layer_names(), default_top_k(run))]
    assert len(labels) >= 2
    log = run.criterion()
    numel = np.array(
        [
            [run.load_net(t).weight_layers()[n].weight.numel() for n in log.layer_names]
            for t in range(run.finished_tasks)
        ]
    )
    rms = np.nanmean(log.grad_norm, axis=1) / np.sqrt(numel)
    _judged(criterion_checks.exercise_2_1, _window_pick(run, rms, log.layer_names), labels, run)
    change, convs, inflated = criterion_checks.weight_change(run)
    assert np.isfinite(change[1:]).all() and convs == list(candidates(log.layer_names))
    for t, name in inflated:
        change[t, convs.index(name)] = np.nan
    _judged(criterion_checks.exercise_2_5, _window_pick(run, change, convs), labels, run)
    picks = {
        a: select_top_k(
            layer_scores(log, expansion_tasks=run.config.expansion_tasks, aggregation=a), default_top_k(run)
        ).label
        for a in ("mean", "median", "max")
    }
    assert criterion_checks.exercise_2_2(picks, "max", run).correct
    assert not criterion_checks.exercise_2_2(picks, "mean", run).correct
    other = next(label for label in labels if label != picks["median"])
    assert not criterion_checks.exercise_2_2({**picks, "median": other}, "max", run).correct


def test_the_tau_and_health_checks_read_the_students_run(run):
    log, k, grid = run.criterion(), default_top_k(run), np.logspace(-12, 0, 13)

    def pick(tau, absolute):
        scores = layer_scores(log, expansion_tasks=run.config.expansion_tasks, tau=tau, absolute=absolute)
        return select_top_k(scores, k).label

    differ = [tau for tau in grid if pick(tau, False) != pick(tau, True)]
    assert criterion_checks.exercise_2_3(differ, run, grid).correct
    same = [tau for tau in grid if tau not in differ]
    assert not criterion_checks.exercise_2_3(differ + same[:1], run, grid).correct
    if differ:
        assert not criterion_checks.exercise_2_3(differ[1:], run, grid).correct

    post = [t for t in range(log.tasks) if t >= run.config.expansion_tasks]
    convs = list(candidates(log.layer_names))
    signed, absolute = (np.nanmean(log.per_task(grid[0], absolute=a)[post], axis=0) for a in (False, True))
    share = {n: float(v) for n, v in zip(log.layer_names, signed) if n in convs}
    assert criterion_checks.exercise_2_4(share, run, grid[0]).correct
    verdict = criterion_checks.exercise_2_4(
        {n: float(v) for n, v in zip(log.layer_names, absolute) if n in convs}, run, grid[0]
    )
    assert not verdict.correct and "|g|" in verdict.message
    assert not criterion_checks.exercise_2_4({n: v + 0.05 for n, v in share.items()}, run, grid[0]).correct

    rows = health_rows(run.metrics())
    crossed = {
        "train accuracy < 0.5": [r["train_accuracy"] < 0.5 for r in rows],
        "rank < 1/4 of the start": [r["feature_rank"] * 4 < rows[0]["feature_rank"] for r in rows],
        "fc1 more than half dead": [r["dead_fraction"]["fc1"] > 0.5 for r in rows],
    }
    first = {name: next((r["task"] for r, c in zip(rows, flags) if c), None) for name, flags in crossed.items()}
    assert criterion_checks.exercise_2_6(first, run).correct
    assert not criterion_checks.exercise_2_6({name: rows[-1]["task"] + 1 for name in first}, run).correct
    assert not criterion_checks.exercise_2_6({name: 0 for name in first}, run).correct or first == dict.fromkeys(
        first, 0
    )


def _threshold_offers(run, criterion):
    """Every block the threshold rule selects as the threshold takes each conv layer's score in turn, computed here
    from the scores with plain Python: the layers scoring at most it, kept when their indices are consecutive."""
    scores = run_scores(run, criterion=criterion)
    convs = list(candidates(scores.layer_names))
    value = {n: scores.of(n)[0] for n in convs}
    offers = []
    for threshold in sorted(v for v in value.values() if np.isfinite(v)):
        picked = [i for i, n in enumerate(convs) if value[n] <= threshold]
        label = block_label([convs[i] for i in picked])
        if picked == list(range(picked[0], picked[-1] + 1)) and label not in offers:
            offers.append(label)
    return offers


def test_the_threshold_check_reads_the_blocks_each_criterion_offers_on_the_students_run(run):
    offers = {c: _threshold_offers(run, c) for c in individual_checks.SIDE_BY_SIDE}
    assert all(offers.values())  # every criterion offers at least one block: its best-scoring layer
    assert offers == {c: individual_checks.threshold_blocks(run, c) for c in offers}
    every = sorted(set(offers["paper"]) | set(offers["transfer"]))
    assert len(every) >= 2
    accuracy = {label: 0.4 + 0.05 * i for i, label in enumerate(every)}  # one best block per criterion
    tables = [_rows([accuracy[label]] * 5, layers=label) for label in every]
    for table in tables:
        table[0]["mean_accuracy"] = table[0]["task_accuracies"][0]
    best = {c: max(offers[c], key=accuracy.get) for c in offers}
    assert individual_checks.exercise_3_6(best, tables, run).correct
    for criterion in offers:
        others = [label for label in every if label != best[criterion]]
        for label in others:
            verdict = individual_checks.exercise_3_6({**best, criterion: label}, tables, run)
            assert not verdict.correct and repr(best[criterion]) not in verdict.message
    assert not individual_checks.exercise_3_6(best, tables[1:], run).correct  # a block the thresholds offer untrained
    assert not individual_checks.exercise_3_6({"paper": best["paper"]}, tables, run).correct
    assert not individual_checks.exercise_3_6(best, [[{"method": "scratch"}]], run).correct
