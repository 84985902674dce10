"""What the individual panel's buttons run: core's few-shot evaluation and size sweep, packaged as one job."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from core.events import Listener
from core.individual.config import IndividualConfig, individual_preset
from core.individual.evaluation import evaluate
from core.individual.targets import make_targets, run_imageset
from core.learngene.extraction import default_task, extract
from core.collective.runs import Run
from core.learngene.selection import check_block, windows
from core.individual.sweep import default_sizes, sweep as size_sweep

DEFAULT_SIZE = "default"
COLLECTIVE_SIZE = "collective"


@dataclass(frozen=True)
class Plan:
    """A checked few-shot job: how many target-task trainings it will emit, and how to run it."""

    run: Run
    layers: tuple[str, ...]
    config: IndividualConfig
    way: int
    shot: int
    tasks: int
    baselines: bool
    sweep: bool
    total: int

    @property
    def setup(self) -> str:
        """A short label of the task setup, e.g. "5-way 5-shot, fine-tune"."""
        return f"{self.way}-way {self.shot}-shot, {'frozen learngene' if self.config.freeze else 'fine-tune'}"

    def execute(self, listeners: Iterable[Listener], should_stop: Callable[[], bool], on_total: Callable[[int], None] = lambda n: None) -> list[dict]:
        """Extract the learngene, build the target tasks and train every method on them (in the calling thread).

        A sweep learns its number of sizes only after extraction; it reports the exact total through `on_total`.
        """
        names = self.run.spec(default_task(self.run)).layer_names()
        learngene = extract(self.run, check_block(names, self.layers, rule="explorer"))
        if not self.sweep:
            return evaluate(self.run, learngene, self.config, way=self.way, shot=self.shot, tasks=self.tasks,
                            baselines=self.baselines, listeners=listeners, should_stop=should_stop)
        sizes = default_sizes(learngene, self.config)
        on_total((2 * len(sizes) + 1) * self.tasks)
        targets = make_targets(self.run, run_imageset(self.run), way=self.way, shot=self.shot, query=self.config.query, tasks=self.tasks, seed=self.config.seed)
        return size_sweep(self.run, learngene, self.config, targets, sizes=sizes, listeners=listeners, should_stop=should_stop)


def size_label(method: str, size: str) -> str:
    """The size a result belongs to: the collective model has one size; a plain run is the default size."""
    if method == "collective-finetune":
        return COLLECTIVE_SIZE
    return size or DEFAULT_SIZE


def plan(run: Run, layers: tuple[str, ...], *, way: int, shot: int, tasks: int, freeze: bool, baselines: bool, sweep: bool) -> Plan:
    """Check the setup and count the target-task trainings; raises LearngeneError with a fix when unusable."""
    config = individual_preset("paper" if run.config.preset == "paper" else "fast", freeze=freeze)
    names = run.spec(default_task(run)).layer_names()
    block = check_block(names, layers).layers
    # learngene and scratch, plus core's baselines: every other window of the same length, collective, centroids
    methods = 2 + (len(windows(names, len(block))) - 1 + 2 if baselines and not sweep else 0)
    return Plan(run, block, config, way, shot, tasks, baselines, sweep, methods * tasks)


def limit_threads() -> None:
    """On a 2-core machine use one torch thread, unless OMP_NUM_THREADS says otherwise.

    The kernel shares those cores with the browser drawing the charts; two spinning OpenMP threads then
    wait on each other and small models train 10-100x slower (measured: 22 s against 0.15 s per target task).
    """
    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)
