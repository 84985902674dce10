"""Run directories: config, per-task checkpoints, criterion, metrics, and a manifest that commits each task."""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from core.atomic import leftover_temporaries, write_json, write_text
from core.checkpoint import read_tensors, save_tensors
from core.collective.config import CollectiveConfig
from core.collective.criterion import CriterionLog
from core.collective.network import ExpandableNet, NetSpec, load_state
from core.digest import file_digest
from core.errors import LearngeneError

CONFIG = "config.json"
MANIFEST = "manifest.json"
CRITERION = "criterion.npz"
METRICS = "metrics.jsonl"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
PENDING = ".pending"
FORMAT = 1


def checkpoint_name(task: int) -> str:
    """File name of the checkpoint taken after `task`."""
    return f"{CHECKPOINTS}/task_{task:03d}.safetensors"


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "safetensors", "learngene-explorer"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


class RunLock:
    """An exclusive advisory lock on a run directory, so two processes never write one run."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self.handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.handle.close()
            self.handle = None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LearngeneError(
                    f"run directory {self.path.parent} is in use by another process: wait for it to finish or choose "
                    "another --run-dir"
                ) from None
            raise
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


@dataclass
class Run:
    """A run directory on disk, read through its manifest (only committed tasks count)."""

    path: Path
    config: CollectiveConfig
    manifest: dict[str, Any]

    @functools.cached_property
    def data_record(self) -> dict[str, Any] | None:
        """The "data" entry of config.json (dataset fingerprint and class division); None for runs from before it."""
        try:
            return json.loads((self.path / CONFIG).read_text()).get("data")
        except (OSError, ValueError, AttributeError):
            raise LearngeneError(f"{self.path / CONFIG} cannot be read: delete the run and train again") from None

    @property
    def finished_tasks(self) -> int:
        """Number of source tasks committed to disk."""
        return int(self.manifest.get("finished_tasks", 0))

    @property
    def complete(self) -> bool:
        """Whether every task of the config has finished."""
        return self.finished_tasks >= self.config.tasks

    def spec(self, task: int | None = None) -> NetSpec:
        """The network's spec after `task` (default: the last finished task)."""
        task = self.last_task if task is None else task
        return NetSpec.from_dict(self.manifest["specs"][str(task)])

    @property
    def last_task(self) -> int:
        """Index of the last finished task."""
        if self.finished_tasks == 0:
            raise LearngeneError(
                f"run {self.path} has no finished task yet: train it with `learngene collective --run-dir {self.path}`"
            )
        return self.finished_tasks - 1

    def _checked(self, name: str) -> Path:
        path = self.path / name
        if name not in self.manifest.get("files", {}):
            raise LearngeneError(
                f"{path} is not part of the run's manifest: the run is incomplete, resume it with --resume"
            )
        if not path.exists():
            raise LearngeneError(f"{path} is missing: rerun the collective stage with --resume")
        return path

    def load_net(self, task: int | None = None) -> ExpandableNet:
        """The collective network as it was after `task` (default: last finished), checksum-verified."""
        task = self.last_task if task is None else task
        if not 0 <= task < self.finished_tasks:
            raise LearngeneError(
                f"task {task} is not a finished task of {self.path}: choose 0..{self.finished_tasks - 1}"
            )
        name = checkpoint_name(task)
        tensors, _ = read_tensors(self._checked(name), self.manifest["files"][name])
        state = {k: v for k, v in tensors.items() if not k.startswith("ewc.")}
        try:
            return load_state(self.spec(task), state)
        except (RuntimeError, KeyError) as exc:
            raise LearngeneError(
                f"{self.path / name} does not fit the run's network ({str(exc).splitlines()[0]}): recreate the run"
            ) from None

    def checkpoint_tensors(self, task: int) -> dict[str, torch.Tensor]:
        """All tensors of a checkpoint (network and EWC state), checksum-verified."""
        name = checkpoint_name(task)
        return read_tensors(self._checked(name), self.manifest["files"][name])[0]

    def _committed(self, name: str) -> Path:
        """The file with `name`'s committed bytes: itself, or its pending twin if a commit stopped before the rename."""
        expected = self.manifest.get("files", {}).get(name)
        if expected is None:
            raise LearngeneError(
                f"{self.path / name} is not part of the run's manifest: the run has no finished task; resume it with "
                "--resume"
            )
        for path in (self.path / name, self.path / (name + PENDING)):
            if path.exists() and file_digest(path) == expected:
                return path
        if not (self.path / name).exists():
            raise LearngeneError(f"{self.path / name} is missing: rerun the collective stage with --resume")
        raise LearngeneError(
            f"{self.path / name} is corrupted (checksum differs from the run manifest): delete the run or rerun its "
            "last task with --resume"
        )

    def criterion(self) -> CriterionLog:
        """The criterion of the finished tasks, checksum-verified."""
        log = CriterionLog.load(self._committed(CRITERION))
        log.truncate(self.finished_tasks)
        return log

    def metrics(self) -> list[dict[str, Any]]:
        """Per-epoch and per-task metric rows of the finished tasks."""
        return [json.loads(line) for line in self._committed(METRICS).read_text().splitlines() if line.strip()]


def open_run(path: str | os.PathLike) -> Run:
    """Open an existing run directory, raising LearngeneError with a fix when it is not one."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise LearngeneError(f"no run directory at {path}: create one with `learngene collective --run-dir {path}`")
    try:
        config_data = json.loads((path / CONFIG).read_text())
        manifest = (
            json.loads((path / MANIFEST).read_text())
            if (path / MANIFEST).exists()
            else {"finished_tasks": 0, "files": {}, "specs": {}}
        )
        config = CollectiveConfig.from_dict(config_data["config"])
    except FileNotFoundError:
        raise LearngeneError(
            f"{path} holds no {CONFIG}: it is not a run directory; pass the folder `learngene collective` wrote"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise LearngeneError(
            f"{path}/{CONFIG} or {MANIFEST} is damaged ({exc.__class__.__name__}): delete the run and train again"
        ) from None
    return Run(path, config, manifest)


def start_run(path: Path, config: CollectiveConfig, initial_spec: NetSpec, data: dict[str, Any]) -> None:
    """Write config.json (with the record of the data it trains on) and an empty manifest for a new run."""
    write_json(
        path / CONFIG,
        {
            "format": FORMAT,
            "config": config.as_dict(),
            "initial_spec": initial_spec.to_dict(),
            "versions": package_versions(),
            "data": data,
        },
    )
    write_json(path / MANIFEST, {"finished_tasks": 0, "files": {}, "specs": {}})


def commit_task(
    run: Run,
    task: int,
    net: ExpandableNet,
    extra_tensors: dict[str, torch.Tensor],
    criterion: CriterionLog,
    metric_rows: list[dict[str, Any]],
) -> None:
    """Write the task's checkpoint, criterion and metrics, then the manifest: the task counts once that lands."""
    name = checkpoint_name(task)
    tensors = dict(net.state_dict())
    tensors.update(extra_tensors)
    files = dict(run.manifest.get("files", {}))
    files[name] = save_tensors(run.path / name, tensors, {"task": str(task), "spec": json.dumps(net.spec.to_dict())})
    criterion.save(run.path / (CRITERION + PENDING))
    files[CRITERION] = file_digest(run.path / (CRITERION + PENDING))
    write_text(run.path / (METRICS + PENDING), "".join(json.dumps(row, sort_keys=True) + "\n" for row in metric_rows))
    files[METRICS] = file_digest(run.path / (METRICS + PENDING))
    specs = dict(run.manifest.get("specs", {}))
    specs[str(task)] = net.spec.to_dict()
    manifest = {"finished_tasks": task + 1, "files": files, "specs": specs}
    write_json(run.path / MANIFEST, manifest)
    run.manifest = manifest
    settle_pending(run)


def settle_pending(run: Run) -> None:
    """Under the run's lock: move committed pending files into place; drop what a stopped commit left uncommitted.

    That is pending files and checkpoints the manifest does not list, and temporaries of interrupted writes.
    """
    committed = run.manifest.get("files", {})
    own = [(run.path, name) for name in (CONFIG, MANIFEST, CRITERION + PENDING, METRICS + PENDING)]
    for folder, names in own + [(run.path / CHECKPOINTS, "task_*.safetensors")]:
        for leftover in leftover_temporaries(folder, names):
            leftover.unlink()
    for checkpoint in sorted((run.path / CHECKPOINTS).glob("task_*.safetensors")):
        if f"{CHECKPOINTS}/{checkpoint.name}" not in committed:
            checkpoint.unlink()
    for name in (CRITERION, METRICS):
        pending = run.path / (name + PENDING)
        if not pending.exists():
            continue
        if file_digest(pending) == committed.get(name):
            os.replace(pending, run.path / name)
        else:
            pending.unlink()


def config_differences(a: CollectiveConfig, b: CollectiveConfig) -> list[str]:
    """Names of the settings where two configs differ."""
    da, db = a.as_dict(), b.as_dict()
    return [k for k in da if da[k] != db[k]]
