"""The two kinds of job, as frozen values: a collective training and a few-shot evaluation of one of its runs.

A job holds everything that changes its result (thread count included) and nothing else, so its key names the
result wherever the job is asked for: the command line, the explorer, a notebook or a sweep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from core.collective.config import CollectiveConfig
from core.collective.runs import Run
from core.data.datasets import resolve_root
from core.individual.baselines import FINETUNE_HEAD
from core.individual.config import IndividualConfig
from core.individual.targets import TargetSource
from core.individual.twins import PAIRING, is_twin
from core.jobs.keys import job_key
from core.learngene.selection import Selection, select_for_run

GENERATED_DATASETS = ("glyphs",)  # drawn by the program itself: no data root shapes their images
METHOD_FAMILIES = (
    "learngene",
    "scratch",
    "front",
    "weight-selection",
    "window",
    "collective-finetune",
    "nearest-centroid",
)
BASELINE_FAMILIES = METHOD_FAMILIES[2:]


def data_root(dataset: str, root: str | os.PathLike | None) -> str | None:
    """The absolute data root a job reads (`root`, else $LEARNGENE_DATA); None for datasets the program draws."""
    if dataset in GENERATED_DATASETS:
        return None
    found = resolve_root(root)
    return None if found is None else str(found.resolve())


@dataclass(frozen=True)
class CollectiveJob:
    """Train one collective run: its config (seed included), the data it reads, where and on how many threads.

    `name` is the run folder's name in the job store (None: the key); the explorer names its runs.
    """

    config: CollectiveConfig
    threads: int = 1
    root: str | None = None
    device: str = "cpu"
    name: str | None = None

    @property
    def key(self) -> str:
        """The job's key: equal for jobs whose runs hold the same numbers."""
        return job_key("collective", self.identity())

    def identity(self) -> dict:
        """What the key hashes."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SelectionRule:
    """How the learngene layers are chosen from a run (the options of `learngene extract`)."""

    layers: str | None = None
    threshold: float | None = None
    top_k: int | None = None
    tau: float | None = None
    absolute: bool = False
    aggregation: str = "mean"
    criterion: str = "paper"

    def apply(self, run: Run, root: str | None = None) -> Selection:
        """The layers this rule selects from a run (see core.learngene.selection.select_for_run; `root`: the run's
        data, which the transfer criterion of a run that predates it is measured on)."""
        return select_for_run(run, **dataclasses.asdict(self), root=root)


@dataclass(frozen=True)
class FewShotJob:
    """Evaluate individual models on few-shot target tasks, from one run (or a learngene file) and one selection.

    `run_id` names the run's content (a collective job's key, or `run_identity` of a folder), so the key does not
    depend on where the run lies. `methods` None keeps every row; else the rows of these method families.
    """

    run_dir: str | None
    run_id: str | None
    config: IndividualConfig
    selection: SelectionRule = SelectionRule()
    target: TargetSource = TargetSource()
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    tasks: int | None = None
    baselines: bool = False
    sizes: bool = False
    windows: bool = False
    prefixes: bool = False
    methods: tuple[str, ...] | None = None
    task: int | None = None
    learngene_file: str | None = None
    learngene_sha256: str | None = None
    root: str | None = None
    device: str = "cpu"
    threads: int = 1

    @property
    def key(self) -> str:
        """The job's key: equal for evaluations that give the same numbers."""
        return job_key("fewshot", self.identity())

    @property
    def fine_tunes_collective(self) -> bool:
        """Whether the job's results hold the collective model fine-tuned: its row, or the size sweep's point."""
        kept = self.baselines if self.methods is None else "collective-finetune" in self.methods
        return self.sizes or kept

    def identity(self) -> dict:
        """What the key hashes: every field but the places where the run and the learngene file lie, and how the
        size sweep pairs its points (each with its twin), so results of the older pairing are not taken for it, and,
        for jobs that fine-tune the collective model, where its head sits (results of the older head are not taken
        either). A job without the prefix study hashes as it did before that study existed."""
        fields = dataclasses.asdict(self)
        for where in ("run_dir", "learngene_file"):
            fields.pop(where)
        fields["target"]["root"] = _absolute(self.target.root)
        if self.sizes:
            fields["size_pairing"] = PAIRING
        if self.fine_tunes_collective:
            fields["finetune_head"] = FINETUNE_HEAD
        if not self.prefixes:
            fields.pop("prefixes")
        return fields


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def run_identity(run_dir: str | os.PathLike) -> str:
    """The content identity of a run folder: sha256 of its config and manifest (which checksums every other file)."""
    folder = Path(run_dir)
    digest = hashlib.sha256()
    for name in ("config.json", "manifest.json"):
        path = folder / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return f"run-{digest.hexdigest()[:16]}"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def method_family(name: str) -> str:
    """The family of a results row's method: "front conv1-conv4" -> "front", "scratch (learngene)" -> "scratch"..."""
    if name.startswith("front "):
        return "front"
    if name.startswith("weight selection"):
        return "weight-selection"
    if name.startswith("window "):
        return "window"
    if is_twin(name):
        return "scratch"
    return name
