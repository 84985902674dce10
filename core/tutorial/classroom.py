"""The tutorials' collective runs as jobs on the shared engine: a notebook asks for its run by name and gets it
finished, however many kernels ask at once; `learngene classroom prepare` trains the same jobs before class.

A finished run with the notebook's settings is opened at once (nothing is written, so a read-only runs root
serves). Otherwise the run is a `CollectiveJob` on the engine of the runs root (`core.jobs.shared`): kernels that
share a Dask scheduler ($DASK_SCHEDULER_ADDRESS) ask for one key and follow one training; a run trained by a
process outside that engine is waited for, its progress read from the run's manifest.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.collective.config import CollectiveConfig, preset
from core.collective.locking import writer_active
from core.collective.run_folders import runs_root
from core.collective.runs import CONFIG, Run, config_differences, open_run
from core.data import datasets
from core.errors import LearngeneError
from core.events import Listener, TaskFinished
from core.jobs.cluster import INTERACTIVE, Engine, wanted_by
from core.jobs.shared import shared_engine, shared_threads
from core.jobs.spec import CollectiveJob, data_root

SHAPES_FOLDER = "shapes-images"  # tutorial 04's drawn images, beside the runs (not a run: no config.json)
# Tutorial 02's run with the paper's setup (its cell states the same settings): one head shared by every task.
PAPER_STYLE = {"head": "shared", "momentum": 0.9, "lr": 0.005, "precise_bn": False}
SMOKE_PAPER_STYLE = {"lr": 0.02, "tasks": 20, "epochs": 10}  # the smoke network dies within 20 tasks at this step
POLL_S = 0.5
QUEUE_CHECK_S = 10.0


@dataclass(frozen=True)
class ClassRun:
    """One collective run a tutorial trains: its folder name under the runs root, its settings, its data root."""

    name: str
    config: CollectiveConfig
    root: str | os.PathLike | None = None


def class_runs(preset_name: str, runs: Path, seed: int = 0) -> list[ClassRun]:
    """Every collective run the four tutorials ask for on `preset_name`, with the settings their cells give it
    (CIFAR-100's only where its data are available, as tutorial 04 trains it only then)."""
    style = PAPER_STYLE | (SMOKE_PAPER_STYLE if preset_name == "smoke" else {})
    found = [
        ClassRun(f"{preset_name}-glyphs", preset(preset_name, dataset="glyphs", seed=seed)),
        ClassRun(f"{preset_name}-glyphs-shared-head", preset(preset_name, dataset="glyphs", seed=seed, **style)),
        ClassRun(
            f"{preset_name}-shapes",
            preset(preset_name, dataset="imagefolder", seed=seed),
            str(Path(runs) / SHAPES_FOLDER),
        ),
    ]
    data = datasets.resolve_root(None)
    if datasets.describe("cifar100", data).available:
        found.append(ClassRun(f"{preset_name}-cifar100", preset(preset_name, dataset="cifar100", seed=seed), str(data)))
    return found


def class_job(run: ClassRun, threads: int) -> CollectiveJob:
    """The job that trains a tutorial run: the same key wherever it is asked for with the same thread count."""
    return CollectiveJob(run.config, threads, data_root(run.config.dataset, run.root), name=run.name)


def recorded_threads(folder: Path) -> int | None:
    """The thread count a run with finished tasks was trained with (its resumption must keep it); None otherwise."""
    try:
        run = open_run(folder) if (Path(folder) / CONFIG).is_file() else None
    except LearngeneError:
        return None
    return run.threads if run is not None and run.finished_tasks > 0 else None


def finished_run(folder: Path, config: CollectiveConfig) -> Run | None:
    """The run in `folder` if it holds every task of `config`; None if it is absent or unfinished; a run with other
    settings is refused (training there would be refused too)."""
    if not (Path(folder) / CONFIG).is_file():
        return None
    try:
        run = open_run(folder)
    except LearngeneError:
        return None  # damaged: the training job checks it and says what is wrong
    diffs = config_differences(run.config, config)
    if diffs:
        raise LearngeneError(
            f"{folder} holds a run with other settings ({', '.join(diffs)}): move that folder away, or set "
            "LEARNGENE_RUNS to another runs folder"
        )
    return run if run.complete else None


def collective_run(
    config: CollectiveConfig,
    name: str,
    *,
    root: str | os.PathLike | None = None,
    listeners: Iterable[Listener] = (),
    runs: Path | None = None,
    say: Callable[[str], None] = print,
) -> Run:
    """The finished run `name` of the runs root, trained with `config` on the shared engine unless it is finished.

    `listeners` get the training's events in this thread (from where this kernel joins it); without them `say`
    reports every tenth of the tasks. Interrupting the wait drops this kernel's interest: the training stops only if
    no other kernel waits for it, and its finished tasks stay.
    """
    runs = Path(runs_root() if runs is None else runs).expanduser()
    folder = runs / name
    listeners = tuple(listeners)
    asked = time.monotonic()
    while True:
        run = finished_run(folder, config)
        if run is not None:
            say(f"{name}: trained before, {run.finished_tasks} tasks ({run.path})")
            return run
        engine = shared_engine(runs)
        job = class_job(ClassRun(name, config, root), shared_threads(folder))
        followed = bool(engine.client.run_on_scheduler(wanted_by, job.key))
        if writer_active(folder) and not followed:
            _wait_for_writer(folder, name, say)
            continue
        try:
            _follow(engine, job, followed, listeners, say)
        except LearngeneError:
            if writer_active(folder):  # another process took the run's lock first: wait for it, then look again
                continue
            raise
        run = open_run(folder)
        if not run.complete:
            raise LearngeneError(
                f"the training of {name} stopped after {run.finished_tasks} of {run.config.tasks} tasks: run the "
                "cell again to resume it"
            )
        say(f"{name}: ready, {run.finished_tasks} tasks, {time.monotonic() - asked:.0f} s after this kernel asked")
        return run


def _follow(
    engine: Engine, job: CollectiveJob, followed: bool, listeners: tuple[Listener, ...], say: Callable[[str], None]
) -> None:
    """Submit the job (or join it), hand its events to the listeners in this thread, and wait for its outcome."""
    tasks, epochs = job.config.tasks, job.config.epochs
    if followed:
        say(f"{job.name}: another kernel started this training; following it")
    else:
        say(f"{job.name}: training {tasks} tasks x {epochs} epochs on the shared engine, {job.threads} thread(s)")
    report = listeners or (Tenths(job.name, tasks, say),)
    events: queue.Queue = queue.Queue()
    future = engine.submit(job, listeners=[events.put], priority=INTERACTIVE)
    try:
        started, next_check, ahead = False, time.monotonic() + QUEUE_CHECK_S, 0
        while True:
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                if future.done():
                    break
                if not started and time.monotonic() >= next_check:
                    next_check = time.monotonic() + QUEUE_CHECK_S
                    now = engine.queue_position(future)
                    if now and now != ahead:
                        say(f"{job.name}: waiting, {now} job(s) ahead on the shared engine")
                    ahead = now
                continue
            started = True
            for listener in report:
                listener(event)
        engine.outcome(future)
    except KeyboardInterrupt:
        engine.cancel(future)
        raise
    finally:
        future.release()


class Tenths:
    """A listener that says how far a training is at every tenth of its tasks (and at the last)."""

    def __init__(self, name: str, tasks: int, say: Callable[[str], None]) -> None:
        self.name, self.tasks, self.say = name, tasks, say
        self.step = max(1, tasks // 10)
        self.start = time.monotonic()

    def __call__(self, event: object) -> None:
        if isinstance(event, TaskFinished) and ((event.task + 1) % self.step == 0 or event.task + 1 == self.tasks):
            self.say(f"{self.name}: task {event.task + 1}/{self.tasks} done, {time.monotonic() - self.start:.0f} s")


def _finished_tasks(folder: Path) -> int:
    try:
        return open_run(folder).finished_tasks
    except LearngeneError:
        return 0


def _wait_for_writer(folder: Path, name: str, say: Callable[[str], None]) -> None:
    """Wait while a process outside this engine trains the run, saying each task it commits."""
    say(f"{name}: another process is training it; waiting for it")
    seen = _finished_tasks(folder)
    while writer_active(folder):
        time.sleep(POLL_S)
        done = _finished_tasks(folder)
        if done != seen:
            say(f"{name}: {done} tasks finished")
            seen = done
