"""What the individual panel's buttons run: core's few-shot plan (targets, methods, sizes) as one job."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from core.collective.runs import Run
from core.events import Listener
from core.individual.config import IndividualConfig, individual_preset
from core.individual.evaluation import plan_few_shot
from core.learngene.extraction import default_task, extract
from core.learngene.selection import check_block, windows

DEFAULT_SIZE = "default"
COLLECTIVE_SIZE = "collective"


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

    @property
    def setup(self) -> str:
        """A short label of the task setup, e.g. "5-way 5-shot, fine-tune"."""
        return f"{self.way}-way {self.shot}-shot, {'frozen learngene' if self.config.freeze else 'fine-tune'}"

    def execute(
        self,
        listeners: Iterable[Listener],
        should_stop: Callable[[], bool],
        on_total: Callable[[int], None] = lambda n: None,
    ) -> list[dict]:
        """Extract the learngene, plan the targets and methods with core, and train them (in the calling thread).

        The plan knows the exact number of trainings (a sweep's sizes depend on the learngene): `on_total` gets it.
        Returns the table rows of a Run, or the size points of a Size sweep.
        """
        names = self.run.spec(default_task(self.run)).layer_names()
        learngene = extract(self.run, check_block(names, self.layers, rule="explorer"))
        plan = plan_few_shot(
            self.run,
            learngene,
            self.config,
            way=self.way,
            shot=self.shot,
            tasks=self.tasks,
            baselines=self.baselines and not self.sweep,
            sizes=self.sweep,
        )
        on_total(plan.trainings)
        rows, points = plan.execute(listeners, should_stop)
        return points if self.sweep else rows


def size_label(method: str, size: str) -> str:
    """The size a result belongs to: the collective model has one size; a plain run is the default size."""
    if method == "collective-finetune":
        return COLLECTIVE_SIZE
    return size or DEFAULT_SIZE


def prepare(
    run: Run, layers: tuple[str, ...], *, way: int, shot: int, tasks: int, freeze: bool, baselines: bool, sweep: bool
) -> Job:
    """Check the selection and settings (fast, in the page's thread); raises LearngeneError with a fix when unusable."""
    config = individual_preset("paper" if run.config.preset == "paper" else "fast", freeze=freeze)
    names = run.spec(default_task(run)).layer_names()
    block = check_block(names, layers).layers
    # learngene and scratch, plus core's baselines: every other window of the same length, collective, centroids
    methods = 2 + (len(windows(names, len(block))) - 1 + 2 if baselines and not sweep else 0)
    return Job(run, block, config, way, shot, tasks, baselines, sweep, methods * tasks)


def limit_threads() -> None:
    """On a 2-core machine use one torch thread, unless OMP_NUM_THREADS says otherwise.

    The kernel shares those cores with the browser drawing the charts; two spinning OpenMP threads then
    wait on each other and small models train 10-100x slower (measured: 22 s against 0.15 s per target task).
    """
    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)
