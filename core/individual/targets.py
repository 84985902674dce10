"""Few-shot target tasks shared by every method: support and query images, normalised once, with a seed per task.

Target tasks come from the run's novel classes (by the class division the run recorded), from every class of
another registered dataset, or from a folder of fixed episodes. Images from elsewhere are brought to the run's
format first: its channels (gray and RGB both ways), its image size, and its ink polarity.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.collective.runs import Run
from core.data import datasets, episodes
from core.data.fingerprint import DataRecord, check_for_targets, unverified_note
from core.data.image_io import convert_channels
from core.data.imageset import ImageSet
from core.data.polarity import Polarity, background, choose, invert_images
from core.data.tasks import FewShotTask, few_shot_tasks
from core.data.transforms import normalise
from core.errors import LearngeneError, Setting
from core.individual.config import IndividualConfig
from core.learngene.gene import Learngene
from core.seeding import generator

EPISODES = "episodes"
TARGET_DATASETS = (*datasets.DATASETS, EPISODES)
DEFAULT_WAY, DEFAULT_SHOT, DEFAULT_TASKS = 5, 10, 5


@dataclass(frozen=True, eq=False)
class TargetTask:
    """One few-shot task with its images already normalised (shared by every method)."""

    task: FewShotTask
    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    seed: int


@dataclass(frozen=True, eq=False)
class Targets:
    """The M target tasks of one evaluation, what they were drawn from, and warnings for the user (one line each).

    `shot` and `query` are None when fixed episodes hold different numbers of images per class; `polarity` is
    None for the run's own images, which are used as trained.
    """

    way: int
    shot: int | None
    query: int | None
    tasks: tuple[TargetTask, ...]
    source: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    polarity: Polarity | None = None


@dataclass(frozen=True)
class TargetSource:
    """Where target tasks come from: the run's novel classes (dataset None), a registered dataset, or episodes."""

    dataset: str | None = None
    root: str | None = None
    invert: str = "auto"


@functools.lru_cache(maxsize=2)
def _cached(dataset: str, root: str | None, image_size: int, seed: int, state: tuple) -> ImageSet:
    return datasets.load(dataset, root, image_size=image_size, seed=seed)


def _folder_state(root: str | None) -> tuple:
    """Modification times of the data root's folders, two levels deep, so that a changed root is loaded again.

    A class folder added or removed, or an image in one, changes them; a long-lived process (the explorer) then
    reloads instead of reusing the images it loaded before.
    """
    top = datasets.resolve_root(root)
    if top is None:
        return ()
    state = []
    try:
        for folder in [top, *(p for p in top.iterdir() if p.is_dir())]:
            state.append((folder.name, folder.stat().st_mtime_ns))
            state += [(f"{folder.name}/{p.name}", p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return ()
    return tuple(state)


def _imageset(dataset: str, root: str | None, image_size: int, seed: int) -> ImageSet:
    return _cached(dataset, root, image_size, seed, _folder_state(root) if dataset != "glyphs" else ())


def run_imageset(run: Run, root: str | None = None) -> ImageSet:
    """The run's dataset, kept in memory for repeated evaluations in one process while its folders stay unchanged."""
    root = None if root is None else str(root)
    return _imageset(run.config.dataset, root, run.config.image_size, run.config.seed)


def task_seed(seed: int, task_id: int) -> int:
    """The seed every method uses for target task `task_id` (model init, batch order, augmentation)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator(seed, 21, task_id)))


def fitting_query(query: int, imageset: ImageSet, shot: int) -> int:
    """`query` images per class, lowered to what `shot` leaves (at least 1; few_shot_tasks reports a shortfall)."""
    return max(1, min(query, imageset.images_per_class() - shot))


def recorded_data(run: Run) -> DataRecord | None:
    """The run's data record, or None for a run written before runs recorded their data."""
    raw = run.data_record
    return None if raw is None else DataRecord.from_dict(raw, str(run.path))


def novel_classes(run: Run, imageset: ImageSet) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The run's novel classes in `imageset` by its recorded division, and notes; data with other classes is refused."""
    record = recorded_data(run)
    if record is None:
        return run.config.division(imageset.class_names).novel, (unverified_note(str(run.path)),)
    notes = check_for_targets(record, imageset, str(run.path))
    return record.pool_indices(imageset, "novel"), tuple(notes)


def _normalised(chosen: list[FewShotTask], images: torch.Tensor, seed: int, device: str) -> tuple[TargetTask, ...]:
    return tuple(
        TargetTask(
            task=t,
            support=normalise(images[t.support], device),
            support_labels=t.support_labels.to(device),
            query=normalise(images[t.query], device),
            query_labels=t.query_labels.to(device),
            seed=task_seed(seed, t.task_id),
        )
        for t in chosen
    )


def make_targets(
    run: Run, imageset: ImageSet, *, way: int, shot: int, query: int, tasks: int, seed: int, device: str = "cpu"
) -> Targets:
    """M target tasks from the run's novel classes (its recorded division), images normalised once."""
    novel, notes = novel_classes(run, imageset)
    chosen = few_shot_tasks(imageset, novel, way=way, shot=shot, query=query, tasks=tasks, seed=seed)
    source = {"kind": "novel", "dataset": run.config.dataset, "path": None, "classes": len(novel)}
    source.update(way=way, shot=shot, query=query, tasks=tasks, polarity=None)
    return Targets(way, shot, query, _normalised(chosen, imageset.images, seed, device), source, notes)


def training_background(run: Run | None, learngene: Learngene, root: str | None) -> float:
    """Brightness of the training images' background: from the run's record, else measured on the training data."""
    record = recorded_data(run) if run is not None else None
    if record is not None:
        return record.background
    try:
        if run is not None:
            imageset = run_imageset(run, root)
        else:
            imageset = _imageset(learngene.dataset, root, learngene.image_size, 0)
    except LearngeneError as exc:
        problem = str(exc).partition(": ")[0]
        raise LearngeneError(
            f"the training images' background is unknown ({problem}), so the ink polarity cannot be compared: set "
            "invert to yes or no"
        ) from None
    return background(imageset.images)


def _same_data_as_training(run: Run | None, imageset: ImageSet) -> list[str]:
    """Refuse a target dataset holding the run's training classes; an image folder sharing some names gets a note.

    Registered datasets name their classes canonically, so a shared name is a shared class; in two image folders
    the same name may be a coincidence, unless every class is the same.
    """
    record = recorded_data(run) if run is not None else None
    if record is None or imageset.name != record.dataset:
        return []
    trained = set(record.division["source"]) | set(record.division["open_world"])
    shared = [name for name in imageset.class_names if name in trained]
    if shared and (imageset.name != "imagefolder" or set(imageset.class_names) == set(record.classes)):
        raise LearngeneError(
            f"the target {imageset.name} data holds {len(shared)} classes that run {run.path} was trained on "
            f"({', '.join(shared[:3])}), so they are not new: choose other data, or keep the run's novel classes"
        )
    if shared:
        return [
            f"{len(shared)} target classes share names with the run's training classes ({', '.join(shared[:3])}): "
            "if they are the same classes, accuracy overstates transfer"
        ]
    return []


@dataclass(frozen=True)
class _Request:
    """What the caller asked of target tasks from elsewhere (None: not given)."""

    source: TargetSource
    run: Run | None
    learngene: Learngene
    config: IndividualConfig
    way: int | None
    shot: int | None
    query: int | None
    tasks: int | None
    root: str | None
    device: str

    def polarised(self, images: torch.Tensor) -> tuple[torch.Tensor, Polarity]:
        """The images in the training images' ink polarity (or as `invert` forces it), and the choice made."""
        level = training_background(self.run, self.learngene, self.root) if self.source.invert == "auto" else None
        chosen = choose(self.source.invert, images, level)
        return invert_images(chosen, images), chosen


def target_tasks(
    source: TargetSource,
    run: Run | None,
    learngene: Learngene,
    config: IndividualConfig,
    *,
    way: int | None = None,
    shot: int | None = None,
    query: int | None = None,
    tasks: int | None = None,
    root: str | None = None,
    device: str = "cpu",
) -> Targets:
    """The target tasks of one evaluation from `source`; None counts take the defaults (5-way 10-shot, 5 tasks).

    `root` is the run's data root (for the run's novel classes and the training background of old runs).
    """
    if source.dataset is None:
        if run is None:
            raise LearngeneError(
                "without a run there are no novel classes to draw target tasks from: choose a target dataset"
            )
        imageset = run_imageset(run, root)
        shot = DEFAULT_SHOT if shot is None else shot
        return make_targets(
            run,
            imageset,
            way=DEFAULT_WAY if way is None else way,
            shot=shot,
            query=fitting_query(config.query, imageset, shot) if query is None else query,
            tasks=DEFAULT_TASKS if tasks is None else tasks,
            seed=config.seed,
            device=device,
        )
    if source.dataset not in TARGET_DATASETS:
        raise LearngeneError(f"unknown target dataset {source.dataset!r}: choose one of {', '.join(TARGET_DATASETS)}")
    if source.dataset in ("imagefolder", EPISODES) and source.root is None:
        raise LearngeneError(f"a target of {source.dataset} needs a folder: give the folder that holds it")
    request = _Request(source, run, learngene, config, way, shot, query, tasks, root, device)
    return _episode_targets(request) if source.dataset == EPISODES else _dataset_targets(request)


def _dataset_targets(r: _Request) -> Targets:
    """Tasks drawn from every class of a registered dataset, as few_shot_tasks draws them from novel classes."""
    imageset = datasets.load(r.source.dataset, r.source.root, image_size=r.learngene.image_size, seed=r.config.seed)
    notes = _same_data_as_training(r.run, imageset)
    channels = torch.from_numpy(convert_channels(imageset.images.numpy(), r.learngene.image_channels))
    images, chosen_polarity = r.polarised(channels)
    way = DEFAULT_WAY if r.way is None else r.way
    shot = DEFAULT_SHOT if r.shot is None else r.shot
    query = fitting_query(r.config.query, imageset, shot) if r.query is None else r.query
    tasks = DEFAULT_TASKS if r.tasks is None else r.tasks
    smallest = imageset.images_per_class()
    if way > imageset.num_classes:
        raise LearngeneError(
            f"{way}-way tasks need {way} classes, but the target {imageset.name} data has {imageset.num_classes}: "
            "lower ",
            Setting("way"),
            f" to at most {imageset.num_classes} classes per task",
        )
    if shot >= smallest:
        raise LearngeneError(
            f"{shot} training images per class leave no test image in the smallest class of the target "
            f"{imageset.name} data ({smallest} images): lower ",
            Setting("shot"),
            f" to at most {smallest - 1}",
        )
    every = tuple(range(imageset.num_classes))
    chosen = few_shot_tasks(imageset, every, way=way, shot=shot, query=query, tasks=tasks, seed=r.config.seed)
    path = datasets.resolve_root(r.source.root)
    described = {
        "kind": "dataset",
        "dataset": r.source.dataset,
        "path": None if path is None else str(path),
        "classes": imageset.num_classes,
        "way": way,
        "shot": shot,
        "query": query,
        "tasks": tasks,
        "polarity": chosen_polarity.as_dict(),
    }
    normalised = _normalised(chosen, images, r.config.seed, r.device)
    return Targets(way, shot, query, normalised, described, tuple(notes), chosen_polarity)


def _episode_targets(r: _Request) -> Targets:
    """One task per episode of the folder, in sorted order; `tasks` keeps the first M."""
    given = [name for name, value in (("way", r.way), ("shot", r.shot), ("query", r.query)) if value is not None]
    if given:
        raise LearngeneError(
            f"episodes fix their own {', '.join(given)} (what their folders hold): leave {given[0]} unset"
        )
    folder = Path(r.source.root).expanduser()
    imageset, chosen, infos = episodes.load_episodes(
        folder, image_size=r.learngene.image_size, channels=r.learngene.image_channels
    )
    if r.tasks is not None:
        if r.tasks > len(chosen):
            raise LearngeneError(
                f"{folder} holds {len(chosen)} episodes, fewer than {r.tasks} target tasks: ask for at most "
                f"{len(chosen)}"
            )
        chosen, infos = chosen[: r.tasks], infos[: r.tasks]
    images, chosen_polarity = r.polarised(imageset.images)
    shots = {info.shot for info in infos}
    queries = {info.query_size for info in infos}
    shot = shots.pop() if len(shots) == 1 else None
    query = queries.pop() if len(queries) == 1 else None
    way = len(infos[0].classes)
    described = {
        "kind": EPISODES,
        "dataset": None,
        "path": str(folder),
        "classes": way,
        "way": way,
        "shot": shot,
        "query": query,
        "tasks": len(chosen),
        "polarity": chosen_polarity.as_dict(),
        "episodes": [info.as_dict() for info in infos],
    }
    normalised = _normalised(chosen, images, r.config.seed, r.device)
    return Targets(way, shot, query, normalised, described, (), chosen_polarity)


def folder_target(folder: Path) -> str:
    """The target dataset a folder holds: episodes, a registered dataset found in it, or else an image folder."""
    if episodes.looks_like_episodes(folder):
        return EPISODES
    for name in datasets.DATASETS:
        if name not in ("glyphs", "imagefolder") and datasets.describe(name, folder).available:
            return name
    return "imagefolder"
