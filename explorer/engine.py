"""What the individual panel's buttons run: core's few-shot plan (targets, methods, sizes) as one job."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.collective.runs import Run
from core.errors import LearngeneError
from core.events import Listener
from core.individual.config import IndividualConfig, individual_preset
from core.individual.evaluation import FewShotPlan, plan_few_shot
from core.individual.targets import EPISODES, TargetSource, folder_target, target_tasks
from core.learngene.extraction import default_task, extract
from core.learngene.selection import block_label, check_block, windows
from core.threads import default_threads, torch_threads

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
    threads: int = 1

    @property
    def setup(self) -> str:
        """A short label of the task setup, e.g. "5-way 1-shot, fine-tune, learngene conv3-conv4"."""
        mode = "frozen learngene" if self.config.freeze else "fine-tune"
        gene = f"learngene {block_label(self.layers)}"
        if self.target_kind == EPISODES:
            return f"episodes of {self.target.name}, {mode}, {gene}"
        where = "" if self.target is None else f" from {self.target.name}"
        return f"{self.way}-way {self.shot}-shot{where}, {mode}, {gene}"

    def execute(
        self,
        listeners: Iterable[Listener],
        should_stop: Callable[[], bool],
        on_total: Callable[[int], None] = lambda n: None,
        on_note: Callable[[str], None] = lambda line: None,
    ) -> list[dict]:
        """Run the job (in this thread); returns the table rows of a Run, or the size points of a Size sweep."""
        rows, points = self.execute_all(listeners, should_stop, on_total, on_note)
        return points if self.sweep else rows

    def execute_all(
        self,
        listeners: Iterable[Listener],
        should_stop: Callable[[], bool],
        on_total: Callable[[int], None] = lambda n: None,
        on_note: Callable[[str], None] = lambda line: None,
        on_plan: Callable[[FewShotPlan], None] = lambda plan: None,
    ) -> tuple[list[dict], list[dict]]:
        """Extract the learngene, draw the targets and plan the methods with core, and train them (in this thread,
        with torch set to the job's thread count meanwhile).

        The plan knows the exact number of trainings (a sweep's sizes depend on the learngene): `on_total` gets it,
        `on_plan` the whole plan (its targets' way and shot). `on_note` gets each line core has for the user about
        the targets (ink polarity, unverified data). Returns (table rows, size points; empty without a sweep).
        """
        with torch_threads(self.threads):
            names = self.run.spec(default_task(self.run)).layer_names()
            learngene = extract(self.run, check_block(names, self.layers, rule="explorer"))
            source = TargetSource(self.target_kind, None if self.target is None else str(self.target), self.invert)
            fixed = self.target_kind == EPISODES
            counts = (
                dict(way=None, shot=None, tasks=None) if fixed else dict(way=self.way, shot=self.shot, tasks=self.tasks)
            )
            targets = target_tasks(source, self.run, learngene, self.config, **counts)
            for line in targets.notes + (() if targets.polarity is None else (targets.polarity.line(),)):
                on_note(line)
            plan = plan_few_shot(
                self.run,
                learngene,
                self.config,
                way=targets.way,
                shot=targets.shot,
                tasks=len(targets.tasks),
                baselines=self.baselines and not self.sweep,
                sizes=self.sweep,
                targets=targets,
            )
            on_total(plan.trainings)
            on_plan(plan)
            return plan.execute(listeners, should_stop)


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
    The job trains with default_threads(): the machine's cores, never a count guessed from its load.
    """
    config = individual_preset("paper" if run.config.preset == "paper" else "fast", freeze=freeze)
    names = run.spec(default_task(run)).layer_names()
    block = check_block(names, layers).layers
    # learngene and scratch, plus core's baselines: every other window of the same length, collective, centroids
    methods = 2 + (len(windows(names, len(block))) - 1 + 2 if baselines and not sweep else 0)
    kind = None if target is None else folder_target(target)
    estimate = methods * tasks
    return Job(
        run, block, config, way, shot, tasks, baselines, sweep, estimate, target, kind, invert, default_threads()
    )
