"""Run directories: config, per-task checkpoints, criterion, metrics, and a manifest that commits each task.

A commit writes the checkpoint, then criterion.npz and metrics.jsonl as *.pending twins, then the manifest (the
commit point), then renames the twins into place. A reader checks every file against one manifest; when a file is
newer than the manifest it read (a commit landed meanwhile), it reads the manifest again and moves on to that
commit as a whole, so it sees one committed state, never a mix. Nothing here deletes a file it cannot prove it
wrote: only its own temporaries (named `.NAME.*.tmp`) and *.pending twins.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from core.atomic import leftover_temporaries, write_json, write_text
from core.checkpoint import read_metadata, read_tensors, save_tensors
from core.collective.config import CollectiveConfig
from core.collective.criterion import CriterionLog
from core.collective.locking import writer_active
from core.collective.network import ExpandableNet, NetSpec, load_state
from core.collective.run_format import (
    CHECKPOINTS,
    check_config,
    check_manifest,
    check_metrics,
    checkpoint_name,
    criterion_problem,
    shape_problem,
)
from core.collective.run_format import read_json as read_checked_json
from core.digest import file_digest
from core.errors import Action, LearngeneError, Setting
from core.names import shown

CONFIG = "config.json"
MANIFEST = "manifest.json"
CRITERION = "criterion.npz"
METRICS = "metrics.jsonl"
PENDING = ".pending"
EXPORT = "export"
FORMAT = 1
COMMITTED_FILES = (CRITERION, METRICS)
READ_PATIENCE_S = 10.0


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "safetensors", "learngene-explorer"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _committed_bytes(run_dir: Path, name: str, sha256: str) -> bytes | None:
    """The bytes of `name` (or of its pending twin) whose sha256 is `sha256`, or None when neither has them.

    The file is tried again after its twin because a commit may rename the twin over it in between.
    """
    for candidate in (name, name + PENDING, name):
        try:
            data = (run_dir / candidate).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LearngeneError(
                f"cannot read {run_dir / candidate} ({exc.strerror}): check the file's permissions"
            ) from None
        if hashlib.sha256(data).hexdigest() == sha256:
            return data
    return None


@dataclass
class Run:
    """A run directory on disk, read through its manifest (only committed tasks count)."""

    path: Path
    config: CollectiveConfig
    manifest: dict[str, Any]
    threads: int | None = None  # torch threads it was trained with (config.json "threads"); None: not recorded
    _files: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

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
        self._check_task(task)
        return NetSpec.from_dict(self.manifest["specs"][str(task)])

    @property
    def last_task(self) -> int:
        """Index of the last finished task."""
        if self.finished_tasks == 0:
            raise self._no_finished_task()
        return self.finished_tasks - 1

    def _no_finished_task(self) -> LearngeneError:
        return LearngeneError(
            f"run {self.path} has no finished task yet: train it with ", Action("train", str(self.path))
        )

    def _check_task(self, task: int) -> None:
        if not 0 <= task < self.finished_tasks:
            raise LearngeneError(
                f"task {task} is not a finished task of {self.path}: choose 0..{self.finished_tasks - 1}"
            )

    def _checkpoint(self, task: int) -> dict[str, torch.Tensor]:
        self._check_task(task)
        name = checkpoint_name(task)
        if not (self.path / name).exists():
            raise LearngeneError(
                f"{self.path / name} is missing: restore it from a backup, or move the run away and train it again"
            )
        return read_tensors(self.path / name, self.manifest["files"][name])[0]

    def load_net(self, task: int | None = None) -> ExpandableNet:
        """The collective network as it was after `task` (default: last finished), checksum-verified."""
        task = self.last_task if task is None else task
        tensors = self._checkpoint(task)
        state = {k: v for k, v in tensors.items() if not k.startswith("ewc.")}
        spec = self.spec(task)
        problem = shape_problem(spec, state)
        if problem is None:
            try:
                return load_state(spec, state)
            except (RuntimeError, KeyError) as exc:
                problem = str(exc).splitlines()[0]
        raise LearngeneError(
            f"{self.path / checkpoint_name(task)} does not fit the run's network ({problem}): restore it from a "
            "backup, or move the run away and train it again"
        )

    def checkpoint_tensors(self, task: int) -> dict[str, torch.Tensor]:
        """All tensors of a checkpoint (network and EWC state), checksum-verified."""
        return self._checkpoint(task)

    def _committed(self) -> dict[str, bytes]:
        """criterion.npz and metrics.jsonl of one commit, read together (see the module docstring)."""
        deadline = time.monotonic() + READ_PATIENCE_S
        quiet = 0
        while not self._files and self.finished_tasks > 0:
            found = {n: _committed_bytes(self.path, n, self.manifest["files"][n]) for n in COMMITTED_FILES}
            if None not in found.values():
                self._files = found
                break
            fresh = _load_manifest(self.path, self.config)
            if fresh != self.manifest:
                self.manifest = fresh
            elif writer_active(self.path):
                if time.monotonic() > deadline:
                    raise LearngeneError(
                        f"run {self.path} is being trained by another process and kept changing while it was read: "
                        "open it again in a moment"
                    )
                time.sleep(0.02)
            else:
                quiet += 1
                if quiet == 2:
                    raise self._damaged(next(n for n, data in found.items() if data is None))
        return self._files

    def _damaged(self, name: str) -> LearngeneError:
        path = self.path / name
        if not path.exists() and not (self.path / (name + PENDING)).exists():
            return LearngeneError(f"{path} is missing: restore it from a backup, or move the run away and train again")
        return LearngeneError(
            f"{shown(path)} is corrupted (checksum differs from the run manifest): restore it from a backup, "
            "or delete the run and train it again"
        )

    def criterion(self) -> CriterionLog:
        """The criterion of the finished tasks, checksum-verified and checked against the run."""
        content = self._committed().get(CRITERION)
        if content is None:
            raise self._no_finished_task()
        log = CriterionLog.load(self.path / CRITERION, content)
        problem = criterion_problem(log, self.config, self.finished_tasks, self.spec().layer_names())
        if problem:
            raise LearngeneError(
                f"{self.path / CRITERION} does not fit the run ({problem}): restore it from a backup, or move the run "
                "away and train it again"
            )
        log.truncate(self.finished_tasks)
        return log

    def metrics(self) -> list[dict[str, Any]]:
        """Per-epoch and per-task metric rows of the finished tasks, checked."""
        content = self._committed().get(METRICS)
        if content is None:
            return []
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise LearngeneError(
                f"{self.path / METRICS} is not UTF-8 text: restore it from a backup, or train the run again"
            ) from None
        return check_metrics(text, self.path / METRICS, self.config, self.finished_tasks)


def _not_a_run(path: Path) -> LearngeneError:
    return LearngeneError(f"{shown(path)} holds no {CONFIG}: it is not a run directory; ", Action("open_run"))


def _load_manifest(path: Path, config: CollectiveConfig) -> dict[str, Any]:
    """The checked manifest; none at all means no finished task, unless files only a commit writes are there."""
    target = path / MANIFEST
    if not target.exists():
        found = unexplained_files(path, {})
        if found:
            raise LearngeneError(
                f"{target} is missing but the run holds {', '.join(map(shown, found[:3]))}: restore "
                "manifest.json from a backup, or move the folder away and train a new run (nothing was changed)"
            )
        return {"finished_tasks": 0, "files": {}, "specs": {}}
    doc = read_checked_json(target, "restore it from a backup, or move the run away and train it again")
    return check_manifest(doc, config, target, COMMITTED_FILES)


def unexplained_files(path: Path, files: dict[str, str]) -> list[str]:
    """Files a commit writes (checkpoints, criterion, metrics) that `files` does not list; temporaries aside."""
    found = [name for name in COMMITTED_FILES if name not in files and (path / name).exists()]
    folder = path / CHECKPOINTS
    if folder.is_dir():
        own = set(leftover_temporaries(folder, "task_*.safetensors"))
        found += [f"{CHECKPOINTS}/{p.name}" for p in sorted(folder.iterdir()) if p not in own]
    return [name for name in found if name not in files]


def open_run(path: str | os.PathLike) -> Run:
    """Open an existing run directory, raising LearngeneError with a fix when it is not one."""
    path = Path(path).expanduser()
    try:
        if not path.is_dir():
            raise LearngeneError(f"no run directory at {path}: create one with ", Action("train", str(path)))
        if not (path / CONFIG).is_file():
            raise _not_a_run(path)
    except (OSError, ValueError) as exc:
        raise LearngeneError(f"cannot open run directory {path!r} ({exc}): pass an existing run folder") from None
    doc = read_checked_json(path / CONFIG, "restore it from a backup or train the run again")
    config = check_config(doc, path / CONFIG, FORMAT)
    return Run(path, config, _load_manifest(path, config), doc.get("threads"))


def check_new_run_dir(path: Path) -> None:
    """Refuse a folder without config.json that already holds files a run would overwrite."""
    found = [name for name in (MANIFEST,) if (path / name).exists()] + unexplained_files(path, {})
    if found:
        raise LearngeneError(
            f"{shown(path)} holds {', '.join(map(shown, found[:3]))} but no {CONFIG}: it is not a run this "
            "program can continue; move those files away or choose another ",
            Setting("run_dir"),
        )


def check_continuable(run: Run) -> None:
    """Refuse to write into a run holding files its manifest does not explain (see the module docstring)."""
    # The one exception: the next task's checkpoint, saying so in its metadata. A commit stopped before its
    # manifest left it, and the next commit replaces it.
    nxt = checkpoint_name(run.finished_tasks)
    strays = []
    for name in unexplained_files(run.path, run.manifest["files"]):
        if name == nxt and read_metadata(run.path / name).get("task") == str(run.finished_tasks):
            continue
        strays.append(name)
    if strays:
        raise LearngeneError(
            f"{shown(run.path)} holds {', '.join(map(shown, strays[:3]))}, which its manifest does not list: "
            "move them out of the run (or restore the manifest that lists them); nothing was changed"
        )


def start_run(path: Path, config: CollectiveConfig, initial_spec: NetSpec, data: dict[str, Any], threads: int) -> None:
    """Write config.json (with the data it trains on and its torch thread count) and an empty manifest for a new run."""
    write_json(
        path / CONFIG,
        {
            "format": FORMAT,
            "config": config.as_dict(),
            "initial_spec": initial_spec.to_dict(),
            "versions": package_versions(),
            "threads": threads,
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
    files[name] = save_tensors(
        run.path / name, tensors, {"task": str(task), "spec": json.dumps(net.spec.to_dict(), sort_keys=True)}
    )
    criterion.save(run.path / (CRITERION + PENDING))
    files[CRITERION] = file_digest(run.path / (CRITERION + PENDING))
    write_text(run.path / (METRICS + PENDING), "".join(json.dumps(row, sort_keys=True) + "\n" for row in metric_rows))
    files[METRICS] = file_digest(run.path / (METRICS + PENDING))
    specs = dict(run.manifest.get("specs", {}))
    specs[str(task)] = net.spec.to_dict()
    manifest = {"finished_tasks": task + 1, "files": files, "specs": specs}
    write_json(run.path / MANIFEST, manifest)
    run.manifest = manifest
    run._files = {}
    settle_pending(run)


def settle_pending(run: Run) -> None:
    """Under the run's lock: move committed pending twins into place; drop our own leftovers of a stopped commit.

    Those are the temporaries of interrupted writes and pending twins the manifest does not commit (both named as
    this program's own); a checkpoint the manifest does not list is left alone (see check_continuable).
    """
    committed = run.manifest.get("files", {})
    own = [(run.path, name) for name in (CONFIG, MANIFEST, CRITERION + PENDING, METRICS + PENDING)]
    for folder, names in own + [(run.path / CHECKPOINTS, "task_*.safetensors")]:
        for leftover in leftover_temporaries(folder, names):
            leftover.unlink()
    for name in COMMITTED_FILES:
        pending = run.path / (name + PENDING)
        if not pending.exists():
            continue
        if file_digest(pending) == committed.get(name):
            os.replace(pending, run.path / name)
        else:
            pending.unlink()


def check_output_path(path: str | os.PathLike, option: str) -> Path:
    """`path`, unless it lies inside a run directory outside that run's export/ folder (it could overwrite the run)."""
    target = Path(path).expanduser()
    try:
        resolved = target.resolve()
        runs = [folder for folder in resolved.parents if (folder / CONFIG).is_file()]
    except (OSError, ValueError, RuntimeError) as exc:
        raise LearngeneError(f"{option} {shown(path)} is not a usable path ({exc}): choose another file name") from None
    for folder in runs[:1]:
        if not resolved.is_relative_to(folder / EXPORT):
            raise LearngeneError(
                f"{option} {shown(path)} lies inside the run directory {shown(folder)}, whose files it could "
                f"overwrite: write it into {shown(folder / EXPORT)}/ or outside the run"
            )
    return target


def config_differences(a: CollectiveConfig, b: CollectiveConfig) -> list[str]:
    """Names of the settings where two configs differ."""
    da, db = a.as_dict(), b.as_dict()
    return [k for k in da if da[k] != db[k]]
