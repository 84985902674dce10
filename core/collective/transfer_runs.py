"""The transfer criterion of a run (see core.collective.transfer): recorded in its task rows, or computed from its
checkpoints for tasks a run of an older version did not record, so old run directories keep working unchanged.

The computation writes nothing into the run: it loads the run's data (checked against the run's fingerprint), builds
the same open-world episodes as training does, and measures each task's checkpoint (about a second per task on CPU).
"""

from __future__ import annotations

import os

import numpy as np

from core.collective.runs import Run
from core.collective.transfer import KEY, accuracy_matrix, held_out_classes, layer_accuracies, open_world_probe
from core.data import datasets
from core.data.fingerprint import DataRecord, check_for_resume
from core.errors import LearngeneError, Setting


def recorded_rows(run: Run) -> dict[int, dict]:
    """{task: {layer: accuracy}} for the finished tasks whose row holds the transfer criterion."""
    rows = (r for r in run.metrics() if r.get("kind") == "task" and isinstance(r.get(KEY), dict))
    return {int(r["task"]): r[KEY] for r in rows}


def computed_rows(
    run: Run, tasks: list[int], root: str | os.PathLike | None = None, device: str = "cpu"
) -> dict[int, dict]:
    """{task: {layer: accuracy}} measured on the checkpoints of `tasks` ({} each when the run's open-world classes
    are too few for an episode)."""
    config = run.config
    try:
        imageset = datasets.load(config.dataset, root, image_size=config.image_size, seed=config.seed)
    except LearngeneError as exc:
        raise LearngeneError(
            f"run {run.path} predates the transfer criterion, which is then computed from its checkpoints and needs "
            f"its data: {exc}"
        ) from None
    if run.data_record is not None:
        check_for_resume(DataRecord.from_dict(run.data_record, str(run.path)), imageset, str(run.path))
    division, stream = config.stream(imageset)
    probe = open_world_probe(imageset, held_out_classes(division, stream), config.seed)
    if probe is None:
        return {t: {} for t in tasks}
    return {t: layer_accuracies(run.load_net(t), imageset, probe, device) for t in tasks}


def run_accuracies(run: Run, root: str | os.PathLike | None = None, device: str = "cpu") -> np.ndarray:
    """(T, L) open-world nearest-centroid accuracies over the run's finished tasks and its criterion's layers (NaN
    where a layer has none: the head), recorded where the run holds them, else computed from the checkpoints."""
    rows = recorded_rows(run)
    missing = [t for t in range(run.finished_tasks) if t not in rows]
    if missing:
        rows.update(computed_rows(run, missing, root, device))
    return accuracy_matrix([rows[t] for t in range(run.finished_tasks)], run.spec().layer_names())


def run_errors(run: Run, root: str | os.PathLike | None = None, device: str = "cpu") -> np.ndarray:
    """(T, L) the transfer criterion's layer scores, open-world error 1 - accuracy (see run_accuracies)."""
    errors = 1.0 - run_accuracies(run, root, device)
    if run.finished_tasks > 0 and not np.isfinite(errors).any():
        raise LearngeneError(
            f"run {run.path} has fewer than 2 open-world classes that its source stream never trains on, so the "
            "transfer criterion has no episode to score: use ",
            Setting("criterion", "paper"),
            " or relative, or a run with more classes",
        )
    return errors
