"""A few-shot job run to its result: the learngene selected (or read), target tasks drawn, every method trained.

The command line, the explorer, notebooks and sweep workers all call this, so one job gives one result anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.collective.runs import Run, open_run
from core.errors import Action, LearngeneError, Setting
from core.events import Listener, Note, PlanReady, emit
from core.individual.block_studies import prefix_blocks, prefix_study, window_blocks, window_study
from core.individual.evaluation import FewShotPlan, check_collective_needs, plan_few_shot
from core.individual.targets import Targets, target_tasks
from core.individual.twins import is_twin, twin_strategy
from core.jobs.spec import BASELINE_FAMILIES, FewShotJob, method_family
from core.learngene.extraction import extract
from core.learngene.gene import Learngene, load, spec_problem
from core.names import shown
from core.tables import jsonable


def _learngene(job: FewShotJob) -> tuple[Run | None, Learngene, dict[str, Any]]:
    """(run, learngene, selection record) from the job's learngene file or its selection rule on the run."""
    if job.learngene_file is None:
        if job.run_dir is None:
            raise LearngeneError("no learngene to evaluate: ", Action("pick_learngene"))
        run = open_run(job.run_dir)
        chosen = job.selection.apply(run, job.root)
        return run, extract(run, chosen, job.task), chosen.as_dict()
    learngene = load(job.learngene_file)
    selection = {"layers": list(learngene.layers), "label": learngene.label, "rule": "file"}
    selection["parameter"] = job.learngene_file
    if job.run_dir is None:
        return None, learngene, selection
    run = open_run(job.run_dir)
    name = shown(job.learngene_file)
    if learngene.task >= run.finished_tasks:
        raise LearngeneError(
            f"{name} comes from task {learngene.task}, but {shown(run.path)} has {run.finished_tasks} finished tasks: "
            f"pass the run it was extracted from ({shown(learngene.run)})"
        )
    if (learngene.dataset, learngene.image_size) != (run.config.dataset, run.config.image_size):
        raise LearngeneError(
            f"{name} was extracted from {learngene.dataset} at {learngene.image_size}px but {shown(run.path)} uses "
            f"{run.config.dataset} at {run.config.image_size}px: pass the matching ",
            Setting("run_dir"),
        )
    problem = spec_problem(learngene, run.spec(learngene.task))
    if problem:
        raise LearngeneError(
            f"{name} does not fit task {learngene.task} of {shown(run.path)} ({problem}): pass the run it was "
            f"extracted from ({shown(learngene.run)})"
        )
    return run, learngene, selection


def wants_baselines(job: FewShotJob) -> bool:
    """Whether the job needs core's baselines: asked for, or some method family beyond learngene and scratch."""
    return job.baselines or (job.methods is not None and any(m in BASELINE_FAMILIES for m in job.methods))


@dataclass(frozen=True, eq=False)
class PreparedFewShot:
    """A few-shot job with its learngene, targets and plan in hand: what is left is training."""

    job: FewShotJob
    run: Run | None
    learngene: Learngene
    selection: dict[str, Any]
    targets: Targets
    plan: FewShotPlan

    @property
    def block_count(self) -> int:
        """How many blocks the window and prefix studies asked for train (0 without them)."""
        count = len(window_blocks(self.run, self.learngene)) if self.job.windows else 0
        return count + (len(prefix_blocks(self.run, self.learngene)) if self.job.prefixes else 0)

    @property
    def trainings(self) -> int:
        """The target-task trainings that running the job reports (TargetTaskFinished events)."""
        return self.plan.trainings + self.block_count * len(self.targets.tasks)

    def execute(
        self, listeners: Iterable[Listener] = (), should_stop: Callable[[], bool] | None = None
    ) -> tuple[list[dict], list[dict], dict[str, dict]]:
        """Train every method, then the window and prefix studies asked for; returns (rows, size points, studies by
        name)."""
        listeners = tuple(listeners)
        rows, points = self.plan.execute(listeners, should_stop)
        asked = {"windows": (self.job.windows, window_study), "prefixes": (self.job.prefixes, prefix_study)}
        studies = {
            name: study(
                self.run,
                self.learngene,
                self.plan.config,
                self.targets,
                device=self.plan.device,
                root=self.job.root,
                listeners=listeners,
                should_stop=should_stop,
            )
            for name, (wanted, study) in asked.items()
            if wanted
        }
        return rows, points, studies

    def result(self, rows: list[dict], points: list[dict], studies: dict[str, dict]) -> dict[str, Any]:
        """The job's result object, as `learngene individual --json` prints it."""
        kept = self.job.methods
        if kept is not None:
            rows = [r for r in rows if method_family(r["method"]) in kept]
            points = [p for p in points if method_family(p["method"]) in kept or _twin_kept(p["method"], kept)]
        selection = dict(
            self.selection,
            task=self.learngene.task,
            in_channels=self.learngene.in_channels,
            input_size=self.learngene.input_size,
        )
        setup = {
            "run_dir": None if self.run is None else str(self.run.path),
            "way": self.targets.way,
            "shot": self.targets.shot,
            "query": self.targets.query,
            "tasks": len(self.targets.tasks),
            "config": self.plan.config.as_dict(),
            "threads": self.job.threads,
            "run_finished_tasks": None if self.run is None else self.run.finished_tasks,
            "run_tasks": None if self.run is None else self.run.config.tasks,
            "checkpoint_task": self.learngene.task,
        }
        result = {"selection": selection, "setup": setup, "target": self.targets.source, "rows": rows, "sizes": points}
        result.update(studies)
        return jsonable(result)


def _twin_kept(method: str, kept: tuple[str, ...]) -> bool:
    """Whether a size point is the twin of a strategy whose family is kept (a point keeps its pairing)."""
    return is_twin(method) and method_family(twin_strategy(method)) in kept


def prepare_fewshot(job: FewShotJob, listeners: Iterable[Listener] = ()) -> PreparedFewShot:
    """Select or read the learngene, draw the target tasks and plan the methods; notes for the user go out as events."""
    run, learngene, selection = _learngene(job)
    baselines = wants_baselines(job)
    check_collective_needs(run, learngene, baselines=baselines or job.windows or job.prefixes, sizes=job.sizes)
    counts = dict(way=job.way, shot=job.shot, query=job.query, tasks=job.tasks)
    targets = target_tasks(job.target, run, learngene, job.config, **counts, root=job.root, device=job.device)
    notes = list(targets.notes)
    if run is not None and not run.complete:
        notes.append(
            f"run {shown(run.path)} has finished {run.finished_tasks} of its {run.config.tasks} tasks (still training "
            f"or stopped): the learngene comes from the checkpoint of task {learngene.task}"
        )
    for line in notes:
        emit(listeners, Note(f"note: {line}"))
    if targets.polarity is not None:
        emit(listeners, Note(targets.polarity.line(), important=False))
    plan = plan_few_shot(
        run,
        learngene,
        job.config,
        way=targets.way,
        shot=targets.shot,
        tasks=len(targets.tasks),
        baselines=baselines,
        sizes=job.sizes,
        targets=targets,
        device=job.device,
    )
    prepared = PreparedFewShot(job, run, learngene, selection, targets, plan)
    emit(listeners, PlanReady(prepared.trainings, targets.way, targets.shot))
    return prepared


def run_fewshot(
    job: FewShotJob, listeners: Iterable[Listener] = (), should_stop: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Run a few-shot job in this process and return its result object."""
    listeners = tuple(listeners)
    prepared = prepare_fewshot(job, listeners)
    return prepared.result(*prepared.execute(listeners, should_stop))
