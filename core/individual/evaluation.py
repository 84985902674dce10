"""One evaluation, planned once for every caller (the CLI, the explorer's Run and Size sweep buttons, notebooks).

A plan holds the target tasks (query images per class lowered to what is left after `shot`), the methods to run,
the sizes of a sweep, and the number of target-task trainings that running it will report. Every method sees the
same target tasks and, per task, the same seed; each task gets a fresh model (the official code reuses one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.collective.runs import Run
from core.errors import LearngeneError, Setting
from core.events import Listener
from core.individual.baselines import baseline_methods
from core.individual.config import IndividualConfig
from core.individual.methods import Method, individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.result_row import add_paired
from core.individual.sweep import Size, default_sizes, sweep, sweep_trainings
from core.individual.targets import Targets, fitting_query, make_targets, run_imageset
from core.learngene.gene import Learngene


@dataclass(frozen=True, eq=False)
class FewShotPlan:
    """A checked few-shot job: what runs on which target tasks, and how many trainings it reports."""

    run: Run | None
    learngene: Learngene
    config: IndividualConfig
    targets: Targets
    methods: tuple[Method, ...]
    sizes: tuple[Size, ...]
    device: str = "cpu"

    @property
    def trainings(self) -> int:
        """How many (method, target task) trainings `execute` reports through TargetTaskFinished events."""
        per_task = len(self.methods)
        if self.sizes:  # points equal to a table row reuse it
            known = [m.name for m in self.methods]
            per_task += sweep_trainings(self.run, self.learngene, self.config, self.sizes, known)
        return per_task * len(self.targets.tasks)

    def execute(
        self, listeners: Iterable[Listener] = (), should_stop: Callable[[], bool] | None = None
    ) -> tuple[list[dict], list[dict]]:
        """Run every method on every target task, then the size sweep; returns (rows, size points)."""
        listeners = tuple(listeners)
        rows = run_methods(self.methods, self.targets, listeners=listeners, should_stop=should_stop)
        add_paired(rows, next(r for r in rows if r["method"] == "scratch"))
        points = []
        if self.sizes:
            points = sweep(
                self.run,
                self.learngene,
                self.config,
                self.targets,
                sizes=self.sizes,
                known=rows,
                device=self.device,
                listeners=listeners,
                should_stop=should_stop,
            )
        return rows, points


def check_collective_needs(run: Run | None, learngene: Learngene, *, baselines: bool, sizes: bool) -> None:
    """Refuse, in one line, the methods that need the collective model when there is only a learngene file."""
    if run is None and (baselines or sizes):
        wanted = "the baselines (front inheritance, weight selection, windows, collective fine-tuning, centroids)"
        wanted = wanted if baselines else "the size sweep"
        raise LearngeneError(
            f"{wanted} cannot run without the collective model, which a learngene file alone does not hold: also "
            "pass the run it came from (",
            Setting("run_dir", str(learngene.run)),
            ")",
        )


def plan_few_shot(
    run: Run | None,
    learngene: Learngene,
    config: IndividualConfig,
    *,
    way: int,
    shot: int,
    tasks: int,
    query: int | None = None,
    baselines: bool = False,
    sizes: bool = False,
    targets: Targets | None = None,
    root: str | None = None,
    device: str = "cpu",
) -> FewShotPlan:
    """Draw the target tasks (unless given) and list the methods.

    `query` None takes the config's query images per class, lowered to what `shot` leaves in each class.
    Without a run (a learngene file alone) only learngene and scratch can run: the others need the collective model.
    """
    check_collective_needs(run, learngene, baselines=baselines, sizes=sizes)
    if targets is None:
        imageset = run_imageset(run, root)
        query = fitting_query(config.query, imageset, shot) if query is None else query
        targets = make_targets(
            run, imageset, way=way, shot=shot, query=query, tasks=tasks, seed=config.seed, device=device
        )
    way = targets.way
    if targets.query is not None:
        config = dataclasses.replace(config, query=targets.query).validate()
    spec = fitted_spec(learngene, way, config)
    methods = [
        individual_method("learngene", spec, config, learngene, device),
        individual_method("scratch", spec, config, None, device),
    ]
    if baselines:
        methods += baseline_methods(run, learngene, way, config, device)
    chosen = tuple(default_sizes()) if sizes else ()
    return FewShotPlan(run, learngene, config, targets, tuple(methods), chosen, device)


def evaluate(
    run: Run | None,
    learngene: Learngene,
    config: IndividualConfig,
    *,
    way: int = 5,
    shot: int = 10,
    tasks: int = 5,
    baselines: bool = False,
    targets: Targets | None = None,
    root: str | None = None,
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """The results table: learngene and scratch (same architecture), plus the baselines when asked."""
    plan = plan_few_shot(
        run,
        learngene,
        config,
        way=way,
        shot=shot,
        tasks=tasks,
        baselines=baselines,
        targets=targets,
        root=root,
        device=device,
    )
    return plan.execute(listeners, should_stop)[0]
