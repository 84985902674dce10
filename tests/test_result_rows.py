"""One row type for few-shot results: the engine's table, an interrupted command's partial rows and the explorer's
table are the same row, read the same way."""

from __future__ import annotations

import numpy as np
import pytest

from core.cli.partial import FinishedResults
from core.events import MethodFinished, TargetTaskFinished
from core.individual.result_row import ROW_FIELDS, ResultRow, add_paired
from core.stats import paired_difference
from explorer.individual.results import ResultStore

ACCURACIES = (0.4, 0.6, 0.7, 0.5, 0.8)


def engine_row(method: str = "learngene", accuracies: tuple[float, ...] = ACCURACIES) -> dict:
    """A row as the engine writes it for a finished method."""
    return ResultRow(method, 1234, accuracies, 5, 1, "conv3-conv4", 567, 2.5).as_dict()


def test_a_row_read_back_from_its_table_is_the_same_row() -> None:
    row = ResultRow("front conv1-conv2", 99, ACCURACIES, 5, 1, "conv1-conv2", 42, 1.0, "x1/4")
    assert ResultRow.from_dict(row.as_dict()) == row
    assert list(row.as_dict())[: len(ROW_FIELDS)] == list(ROW_FIELDS)


def test_a_rows_mean_and_interval_are_those_of_its_task_accuracies() -> None:
    row = engine_row()
    assert row["mean_accuracy"] == pytest.approx(np.mean(ACCURACIES))
    sem = np.std(ACCURACIES, ddof=1) / np.sqrt(len(ACCURACIES))
    assert row["ci95"] == pytest.approx(2.776 * sem, rel=1e-3)
    assert ResultRow("scratch", 1, (0.5,)).as_dict()["ci95"] is None


def test_pairing_uses_the_target_tasks_both_rows_have_finished() -> None:
    finished = ResultRow("scratch", 1, (0.2, 0.3, 0.1, 0.6, 0.2))
    running = ResultRow("learngene", 1, (0.5, 0.4, 0.6))
    assert running.paired_with(finished) == paired_difference((0.5, 0.4, 0.6), (0.2, 0.3, 0.1))
    assert finished.paired_with(running) == paired_difference((0.2, 0.3, 0.1), (0.5, 0.4, 0.6))
    assert running.paired_with(ResultRow("scratch", 1, ())) is None


def test_every_engine_row_is_paired_with_scratch_on_the_same_tasks() -> None:
    rows = [engine_row("learngene"), engine_row("scratch", (0.3, 0.5, 0.5, 0.5, 0.6))]
    add_paired(rows, rows[1])
    assert rows[0]["vs_scratch"]["mean"] == pytest.approx(np.mean(np.subtract(ACCURACIES, rows[1]["task_accuracies"])))
    assert "vs_scratch" not in rows[1]


def test_an_interrupted_methods_row_has_every_field_of_a_finished_one() -> None:
    finished = FinishedResults(way=5, shot=1)
    finished(MethodFinished(engine_row("scratch")))
    for task, accuracy in enumerate(ACCURACIES[:3]):
        finished(TargetTaskFinished("learngene", task, 5, accuracy, 1234))
    rows, points = finished.so_far()
    done, partial = rows
    assert set(ROW_FIELDS) <= set(partial) and set(ROW_FIELDS) <= set(done)
    assert (partial["partial"], done["partial"], points) == (True, False, [])
    assert partial["mean_accuracy"] == pytest.approx(np.mean(ACCURACIES[:3]))
    assert (partial["tasks"], partial["way"], partial["shot"]) == (3, 5, 1)


def test_the_page_shows_the_engines_row_once_a_method_has_finished() -> None:
    store = ResultStore()
    for accuracy in ACCURACIES:
        store.add("learngene", "default", "5-way 1-shot", 1234, len(ACCURACIES), accuracy, 5, "conv3-conv4")
    running_view = store.rows()[0]
    store.add_row(engine_row(), "default", "5-way 1-shot", 5, "conv3-conv4")
    (row,) = store.rows()
    assert (row["layers"], row["inherited_params"], row["seconds"]) == ("conv3-conv4", 567, 2.5)
    assert running_view["inherited_params"] == 0 and running_view["status"] == "done"
    assert row["mean_accuracy"] == pytest.approx(engine_row()["mean_accuracy"], abs=1e-4)
    assert row["task_accuracies"] == list(ACCURACIES)


def test_the_page_pairs_a_running_method_with_scratch_on_the_tasks_both_finished() -> None:
    store = ResultStore()
    scratch = (0.2, 0.3, 0.1, 0.6, 0.2)
    for accuracy in scratch:
        store.add("scratch", "default", "s", 10, 5, accuracy)
    for accuracy in ACCURACIES[:2]:
        store.add("learngene", "default", "s", 10, 5, accuracy)
    learngene = next(r for r in store.rows() if r["method"] == "learngene")
    assert learngene["status"] == "running" and learngene["vs_scratch"]["tasks"] == 2
    assert learngene["vs_scratch"]["mean"] == pytest.approx(np.mean(np.subtract(ACCURACIES[:2], scratch[:2])), abs=1e-4)
