"""What the individual panel's buttons run: core's few-shot plan (targets, methods, sizes) as one job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.collective.runs import Run
from core.errors import LearngeneError
from core.individual.config import IndividualConfig, individual_preset
from core.individual.targets import EPISODES, TargetSource, folder_target
from core.jobs.spec import FewShotJob, SelectionRule, data_root, run_identity
from core.learngene.extraction import default_task
from core.learngene.selection import block_label, check_block, windows

DEFAULT_SIZE = "default"
COLLECTIVE_SIZE = "collective"
KIND_LABELS = {"episodes": "episodes", "imagefolder": "image folder", "omniglot": "Omniglot", "cifar100": "CIFAR-100"}


def target_folders(root: Path | None) -> list[tuple[str, str]]:
    """(label, name) of each folder directly under the data root, labelled with what it holds, sorted by name."""
    if root is None or not root.is_dir():
        return []
    try:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [(f"{name} ({KIND_LABELS[folder_target(root / name)]})", name) for name in names]


def resolve_target(root: Path | None, name: str) -> Path:
    """The folder `name` directly under the data root, refusing anything that leads outside it (symlinks too)."""
    if root is None:
        raise LearngeneError("no data folder is set up for this page: only the run's novel classes can be targets")
    relative = Path(name)
    base = root.resolve()
    target = (base / relative).resolve()
    if len(relative.parts) != 1 or relative.is_absolute() or name in (".", "..") or target.parent != base:
        raise LearngeneError(f"target {name!r} is not a folder of the data folder: choose one from the target list")
    if not target.is_dir():
        raise LearngeneError(f"target folder {name!r} is gone from the data folder: refresh the target list")
    return target


@dataclass(frozen=True)
class Job:
    """A checked few-shot job of the panel; `estimate` counts its trainings until the plan gives the exact number."""

    run: Run
    layers: tuple[str, ...]
    config: IndividualConfig
    way: int
    shot: int
    tasks: int
    baselines: bool
    sweep: bool
    estimate: int
    target: Path | None = None
    target_kind: str | None = None
    invert: str = "auto"

    @property
    def setup(self) -> str:
        """A short label of the task setup, e.g. "5-way 1-shot, fine-tune, learngene conv3-conv4"."""
        mode = "frozen learngene" if self.config.freeze else "fine-tune"
        gene = f"learngene {block_label(self.layers)}"
        if self.target_kind == EPISODES:
            return f"episodes of {self.target.name}, {mode}, {gene}"
        where = "" if self.target is None else f" from {self.target.name}"
        return f"{self.way}-way {self.shot}-shot{where}, {mode}, {gene}"

    def fewshot_job(self, threads: int) -> FewShotJob:
        """The keyed job of this Run (or Size sweep): the panel's layers, settings and targets on its run."""
        fixed = self.target_kind == EPISODES
        return FewShotJob(
            run_dir=str(self.run.path),
            run_id=run_identity(self.run.path),
            config=self.config,
            selection=SelectionRule(layers=",".join(self.layers)),
            target=TargetSource(self.target_kind, None if self.target is None else str(self.target), self.invert),
            way=None if fixed else self.way,
            shot=None if fixed else self.shot,
            tasks=None if fixed else self.tasks,
            baselines=self.baselines and not self.sweep,
            sizes=self.sweep,
            root=data_root(self.run.config.dataset, None),
            threads=threads,
        )


def size_label(method: str, size: str) -> str:
    """The size a result belongs to: the collective model has one size; a plain run is the default size."""
    if method == "collective-finetune":
        return COLLECTIVE_SIZE
    return size or DEFAULT_SIZE


def prepare(
    run: Run,
    layers: tuple[str, ...],
    *,
    way: int,
    shot: int,
    tasks: int,
    freeze: bool,
    baselines: bool,
    sweep: bool,
    target: Path | None = None,
    invert: str = "auto",
) -> Job:
    """Check the selection and settings (fast, in the page's thread); raises LearngeneError with a fix when unusable.

    `target` None draws tasks from the run's novel classes; a folder is read as what it holds (see folder_target).
    """
    config = individual_preset("paper" if run.config.preset == "paper" else "fast", freeze=freeze)
    names = run.spec(default_task(run)).layer_names()
    block = check_block(names, layers).layers
    # learngene and scratch, plus core's baselines: every other window of the same length, collective, centroids
    methods = 2 + (len(windows(names, len(block))) - 1 + 2 if baselines and not sweep else 0)
    kind = None if target is None else folder_target(target)
    estimate = methods * tasks
    return Job(run, block, config, way, shot, tasks, baselines, sweep, estimate, target, kind, invert)
