"""What a run directory's JSON files may hold: each is checked for keys, types and ranges before anything uses it.

Unknown extra keys in config.json and in metric rows are accepted (newer versions add some); everything a reader
uses is checked, so a damaged or hand-edited file is a LearngeneError naming it, never a traceback later on.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import safejson
from core.collective.config import CollectiveConfig
from core.collective.criterion import CriterionLog
from core.collective.network import NetSpec
from core.errors import LearngeneError, Part

MAX_JSON_BYTES = 64 << 20
MAX_WIDTH = 65536
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SPEC_KEYS = {"in_channels", "image_size", "widths", "pool_after", "hidden", "num_outputs", "dropout"}
CHECKPOINTS = "checkpoints"


def checkpoint_name(task: int) -> str:
    """File name of the checkpoint taken after `task`."""
    return f"{CHECKPOINTS}/task_{task:03d}.safetensors"


def read_json(path: Path, fix: str) -> object:
    """The JSON in `path`; an unreadable, oversized or malformed file is a LearngeneError naming it and `fix`."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise LearngeneError(f"cannot read {path} ({exc.strerror or exc}): {fix}") from None
    if len(data) > MAX_JSON_BYTES:
        raise LearngeneError(f"{path} is larger than {MAX_JSON_BYTES >> 20} MiB, which no run writes: {fix}")
    try:
        return safejson.parse(data)
    except ValueError as exc:
        raise LearngeneError(f"{path} is damaged ({exc}): {fix}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_list(value: object) -> bool:
    return isinstance(value, list) and all(_is_int(v) for v in value)


def check_config(doc: object, path: Path, newest_format: int) -> CollectiveConfig:
    """The validated config of a config.json document (format 1 up to `newest_format`; extra keys are allowed)."""

    def bad(*problem: Part) -> LearngeneError:
        return LearngeneError(f"{path} is damaged (", *problem, "): restore it from a backup or train the run again")

    if not isinstance(doc, dict):
        raise bad("it is not a JSON object")
    version = doc.get("format")
    if not _is_int(version) or not 1 <= version <= newest_format:
        raise LearngeneError(
            f"{path} has format {version!r}; this version of learngene reads formats 1 to {newest_format}: "
            "update learngene or train the run again"
        )
    if not isinstance(doc.get("config"), dict):
        raise bad("it has no config object")
    try:
        config = CollectiveConfig.from_dict(doc["config"]).validate()
    except LearngeneError as exc:
        raise bad(*exc.parts) from None
    except (TypeError, ValueError) as exc:
        raise bad(f"a setting has the wrong type: {exc}") from None
    threads = doc.get("threads")
    if threads is not None and not (_is_int(threads) and 1 <= threads <= 1024):
        raise bad(f"its thread count {threads!r} is not a whole number from 1 to 1024")
    if "initial_spec" in doc:
        check_spec(doc["initial_spec"], config, f"{path} (initial_spec)")
    return config


def width_limits(config: CollectiveConfig) -> list[tuple[int, int]]:
    """(smallest, largest) output channels each conv layer can have in a run of `config`."""
    extra = [0] * len(config.widths)
    for _, layer, channels in config.widening:
        extra[int(layer.removeprefix("conv")) - 1] += channels
    return [(w, min(MAX_WIDTH, w + e)) for w, e in zip(config.widths, extra)]


def check_spec(data: object, config: CollectiveConfig, where: str) -> NetSpec:
    """A network spec that fits the run's config: its structure, and widths between the initial and fully widened."""

    def bad(*problem: Part) -> LearngeneError:
        return LearngeneError(
            f"{where} holds a bad network spec (", *problem, "): restore it from a backup or train again"
        )

    if not isinstance(data, dict):
        raise bad("not a JSON object")
    missing, unknown = sorted(_SPEC_KEYS - {"dropout"} - set(data)), sorted(set(data) - _SPEC_KEYS)
    if missing or unknown:
        raise bad(f"missing {missing}, unknown {unknown}")
    for key in ("in_channels", "image_size", "num_outputs"):
        if not _is_int(data[key]):
            raise bad(f"{key} is not a whole number")
    for key in ("widths", "pool_after", "hidden"):
        if not _int_list(data[key]):
            raise bad(f"{key} is not a list of whole numbers")
    if "dropout" in data and not _is_number(data["dropout"]):
        raise bad("dropout is not a number")
    limits = width_limits(config)
    widths = data["widths"]
    checks = [
        (1 <= data["in_channels"] <= 4, f"in_channels {data['in_channels']} is not 1 to 4"),
        (data["image_size"] == config.image_size, f"image_size {data['image_size']} is not {config.image_size}"),
        (len(widths) == len(limits), f"{len(widths)} conv layers, the config has {len(limits)}"),
        (
            len(widths) == len(limits) and all(lo <= w <= hi for w, (lo, hi) in zip(widths, limits)),
            "a width lies outside what the config's widening can reach",
        ),
        (data["pool_after"] == list(config.pool_after), "pool_after differs from the config's"),
        (data["hidden"] == list(config.hidden), "hidden widths differ from the config's"),
        (
            config.classes_per_task <= data["num_outputs"] <= MAX_WIDTH,
            f"num_outputs {data['num_outputs']} is not {config.classes_per_task} to {MAX_WIDTH}",
        ),
    ]
    for ok, problem in checks:
        if not ok:
            raise bad(problem)
    try:
        return NetSpec.from_dict(data)
    except LearngeneError as exc:
        raise bad(*exc.parts) from None


def check_manifest(doc: object, config: CollectiveConfig, path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The manifest, checked: finished_tasks, files (checkpoints plus `names`) and specs fit together and the config."""

    def bad(problem: str) -> LearngeneError:
        return LearngeneError(
            f"{path} is damaged ({problem}): restore it from a backup, or move the run away and train it again"
        )

    if not isinstance(doc, dict):
        raise bad("it is not a JSON object")
    finished, files, specs = doc.get("finished_tasks"), doc.get("files"), doc.get("specs")
    if not _is_int(finished) or not 0 <= finished <= config.tasks:
        raise bad(f"finished_tasks {finished!r} is not a whole number from 0 to {config.tasks}")
    if not isinstance(files, dict) or not isinstance(specs, dict):
        raise bad("files or specs is not an object")
    expected = {checkpoint_name(t) for t in range(finished)} | (set(names) if finished else set())
    if set(files) != expected:
        odd = sorted(set(files) ^ expected)
        raise bad(f"its files do not match {finished} finished tasks ({', '.join(odd[:3])})")
    if not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in files.values()):
        raise bad("a file's sha256 is not 64 hex digits")
    if set(specs) != {str(t) for t in range(finished)}:
        raise bad(f"its specs do not list tasks 0 to {finished - 1}")
    for t in range(finished):
        check_spec(specs[str(t)], config, f"{path} (spec of task {t})")
    return doc


def check_metrics(text: str, path: Path, config: CollectiveConfig, finished: int) -> list[dict[str, Any]]:
    """Metric rows of `finished` tasks: epoch rows and one task row per task, with the keys readers use."""

    def bad(line: int, problem: str) -> LearngeneError:
        return LearngeneError(
            f"{path} line {line} is damaged ({problem}): restore it from a backup or train the run again"
        )

    rows, task_rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = safejson.parse(line)
        except ValueError as exc:
            raise bad(number, str(exc)) from None
        if not isinstance(row, dict) or not isinstance(row.get("kind"), str):
            raise bad(number, "not an object with a kind")
        task = row.get("task")
        if not _is_int(task) or not 0 <= task < finished:
            raise bad(number, f"task {task!r} is not a finished task")
        problem = {"epoch": _epoch_problem, "task": _task_problem}.get(row["kind"], lambda *_: None)(row, config)
        if problem:
            raise bad(number, problem)
        if row["kind"] == "task":
            task_rows.append(task)
        rows.append(row)
    if task_rows != list(range(finished)):
        raise LearngeneError(
            f"{path} does not hold one task row for each of the {finished} finished tasks: restore it from a backup "
            "or train the run again"
        )
    return rows


def _epoch_problem(row: dict[str, Any], config: CollectiveConfig) -> str | None:
    if not _is_int(row.get("epoch")) or not 0 <= row["epoch"] < config.epochs:
        return f"epoch {row.get('epoch')!r} is not 0 to {config.epochs - 1}"
    if not _is_number(row.get("loss")) or not (_is_number(row.get("accuracy")) and 0 <= row["accuracy"] <= 1):
        return "loss or accuracy is not a finite number (accuracy from 0 to 1)"
    return None


def _task_problem(row: dict[str, Any], config: CollectiveConfig) -> str | None:
    widths = row.get("widths")
    if not isinstance(widths, dict) or not all(_is_int(v) and 1 <= v <= MAX_WIDTH for v in widths.values()):
        return "widths is not an object of layer widths"
    if not (_is_number(row.get("train_accuracy")) and 0 <= row["train_accuracy"] <= 1):
        return "train_accuracy is not a number from 0 to 1"
    for key in ("auroc_msp", "auroc_energy"):
        if row.get(key) is not None and not _is_number(row[key]):
            return f"{key} is neither a number nor null"
    if not _int_list(row.get("classes")) or not _is_int(row.get("params")):
        return "classes or params is not whole numbers"
    if len(row["classes"]) != config.classes_per_task:
        return f"it lists {len(row['classes'])} classes, not {config.classes_per_task}"
    transfer = row.get("transfer", {})
    if not isinstance(transfer, dict) or not all(_is_number(v) and 0 <= v <= 1 for v in transfer.values()):
        return "transfer is not an object of accuracies from 0 to 1"
    return None


def criterion_problem(
    log: CriterionLog, config: CollectiveConfig, finished: int, layers: tuple[str, ...]
) -> str | None:
    """What about a loaded criterion does not fit the run's config and finished tasks, or None."""
    n = finished
    if log.tasks < n or log.epochs != config.epochs:
        return f"{log.tasks} tasks of {log.epochs} epochs, the run has {n} finished tasks of {config.epochs}"
    if log.layer_names != layers:
        return "its layers are not the network's"
    if not np.isclose(log.tau, config.tau, rtol=1e-9, atol=0):
        return f"tau {log.tau:g} is not the run's {config.tau:g}"
    if not log.recorded[:n].all():
        return "an epoch of a finished task was never recorded"
    values = np.stack([log.signed[:n], log.absolute[:n]])
    if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
        return "its fractions of finished tasks are not all numbers from 0 to 1"
    if not np.isfinite(log.hist[:n]).all():
        return "its histograms hold NaN or infinite values"
    return None


def shape_problem(spec: NetSpec, state: dict[str, torch.Tensor]) -> str | None:
    """The first weight whose shape the spec does not predict (checked before the network is allocated), or None."""
    channels = (spec.in_channels,) + spec.widths
    expected = {f"convs.conv{i}.conv.weight": (channels[i], channels[i - 1], 3, 3) for i in range(1, len(channels))}
    sizes = (spec.widths[-1] * spec.feature_size() ** 2,) + spec.hidden + (spec.num_outputs,)
    expected.update({f"fcs.fc{i}.weight": (sizes[i], sizes[i - 1]) for i in range(1, len(sizes))})
    for key, shape in expected.items():
        if key not in state:
            return f"it lacks {key}"
        if tuple(state[key].shape) != shape:
            return f"{key} has shape {list(state[key].shape)}, the spec needs {list(shape)}"
    return None
