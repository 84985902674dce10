"""Sequential training of the expandable collective model over the source stream, recording the criterion."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from core.batchnorm import recalibrate_batchnorm
from core.collective.config import CollectiveConfig
from core.collective.criterion import CriterionLog, EpochRecorder
from core.collective.ewc import EWC
from core.collective.health import Health, measure, normalised_probe, probe_indices
from core.collective.locking import LOCK, RunLock
from core.collective.network import ExpandableNet, NetSpec, build
from core.collective.openworld import open_world_auroc
from core.collective.runs import (
    CONFIG,
    MANIFEST,
    Run,
    check_continuable,
    check_new_run_dir,
    commit_task,
    config_differences,
    open_run,
    settle_pending,
    start_run,
)
from core.collective.step import NonFiniteLoss, optimizer_step
from core.collective.transfer import KEY as TRANSFER
from core.collective.transfer import OpenWorldProbe, held_out_classes, layer_accuracies, open_world_probe
from core.collective.widening import apply_schedule
from core.data import datasets
from core.data.fingerprint import DataRecord, check_for_resume, data_record
from core.data.imageset import ImageSet
from core.data.tasks import SourceTask
from core.data.transforms import augment, normalise
from core.devices import resolve_device
from core.errors import Action, LearngeneError, Setting
from core.events import EpochEnded, Listener, TaskFinished, TaskStarted, check_stop, emit
from core.seeding import generator
from core.threads import changed_threads, torch_threads


def initial_spec(config: CollectiveConfig, channels: int) -> NetSpec:
    """The network before any widening."""
    return NetSpec(
        in_channels=channels,
        image_size=config.image_size,
        widths=tuple(config.widths),
        pool_after=tuple(config.pool_after),
        hidden=tuple(config.hidden),
        num_outputs=config.num_outputs or config.classes_per_task,
        dropout=config.dropout,
    )


def task_loss(config: CollectiveConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, optionally on softmax outputs as the paper's code does (softmax applied twice)."""
    if config.softmax_before_loss:
        logits = torch.softmax(logits, dim=1)
    return F.cross_entropy(logits, labels)


def _prepare(
    run_dir: Path, config: CollectiveConfig, resume: bool, lock: RunLock, threads: int | None
) -> tuple[Run | None, bool, int]:
    """Check an existing run directory against the config; return (run, reusable-as-finished, thread count).

    Nothing is written or removed before every check has passed, and a finished run is reused without writing.
    """
    if not (run_dir / CONFIG).exists():
        check_new_run_dir(run_dir)
        run = None
    else:
        run = open_run(run_dir)
        diffs = config_differences(run.config, config)
        if diffs:
            raise LearngeneError(
                f"{run_dir} holds a run with other settings ({', '.join(diffs)}): choose another ",
                Setting("run_dir"),
                " or move that one away",
            )
        if run.complete:
            return run, True, threads or run.threads or torch.get_num_threads()
        if run.finished_tasks > 0 and not resume:
            raise LearngeneError(
                f"{run_dir} holds a run interrupted after {run.finished_tasks} of {config.tasks} tasks: ",
                Action("resume"),
                " to continue it",
            )
        check_continuable(run)
    threads = _run_threads(run, threads)
    if lock.read_only:
        raise LearngeneError(
            f"{run_dir} is not writable (read-only media or no permission): choose another ", Setting("run_dir")
        )
    if run is not None:
        settle_pending(run)
    return run, False, threads


def _run_threads(run: Run | None, threads: int | None) -> int:
    """The thread count to train with: the caller's, else the one a resumed run recorded, else torch's current one.

    Another count changes the numbers (docs/command-line.md), so resuming with another count is refused.
    """
    recorded = run.threads if run is not None and run.finished_tasks > 0 else None
    if recorded is not None and threads is not None and threads != recorded:
        raise changed_threads(run.path, recorded, threads)
    return threads or recorded or torch.get_num_threads()


@dataclass
class CollectiveTrainer:
    """Trains the collective model task after task, in named steps: grow, open-world check, epochs, consolidate, report.

    Holds what lives across tasks: the network, the EWC state, the criterion log and the metric rows.
    """

    config: CollectiveConfig
    net: ExpandableNet
    imageset: ImageSet
    stream: list[SourceTask]
    criterion: CriterionLog
    metric_rows: list[dict]
    ewc: EWC | None = None
    device: str = "cpu"
    listeners: tuple[Listener, ...] = ()
    should_stop: Callable[[], bool] | None = None
    probe: torch.Tensor | None = None
    openworld: OpenWorldProbe | None = None
    _task: int = field(default=0, init=False)
    _first_loss: float = field(default=math.nan, init=False)
    _grad_norm: tuple[float, ...] = field(default=(), init=False)

    def train_task(self, t: int) -> None:
        """Widen as scheduled, then train task t for the configured epochs with a fresh optimiser."""
        self._task = t
        g = generator(self.config.seed, 10, t)
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator(self.config.seed, 11, t))))
        widened = self.grow(t, g)
        emit(self.listeners, TaskStarted(t, self.config.tasks, self.config.epochs, self.net.widths(), tuple(widened)))
        auroc_msp, auroc_energy = open_world_auroc(self.net, self.imageset, self.stream, t, self.device)
        optimizer = self._optimizer()
        for epoch in range(self.config.epochs):
            self._epoch(epoch, optimizer, g)
        if self.config.precise_bn:
            self._precise_bn()
        self._consolidate()
        row = self._task_row(widened, auroc_msp, auroc_energy)
        if self.probe is not None:
            row["health"] = self._health().as_dict()
        if self.openworld is not None:
            row[TRANSFER] = layer_accuracies(self.net, self.imageset, self.openworld, self.device)
        self.metric_rows.append(row)

    def grow(self, t: int, g: torch.Generator) -> list[tuple[str, int]]:
        """Apply the widening schedule of task t (EWC re-anchors), and give a per-task head its fresh outputs."""
        widened = apply_schedule(self.net, self.config.widening, t, generator=g, noise=self.config.widen_noise)
        self.net.to(self.device)
        if widened and self.ewc is not None:
            self.ewc.rebase(self.net)
        if self.config.head == "per_task" and t > 0:
            self.net.replace_head(self.net.spec.num_outputs, generator=g)
            self.net.to(self.device)
        return widened

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(self.net.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def _epoch(self, epoch: int, optimizer: torch.optim.Optimizer, g: torch.Generator) -> None:
        """One pass over the task's images in random order; records the criterion and the epoch's metrics."""
        config, task = self.config, self.stream[self._task]
        images, labels = self.imageset.images[task.train], task.train_labels
        n = len(labels)
        self.net.train()
        recorder = EpochRecorder(self.net.weight_layers(), config.tau)
        order = torch.randperm(n, generator=g)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            check_stop(self.should_stop)
            idx = order[start : start + config.batch_size]
            x = normalise(images[idx], self.device)
            if config.augment:
                x = augment(x, g, flip=config.flip)
            y = labels[idx].to(self.device)
            logits = self.net(x)
            try:
                loss = optimizer_step(
                    task_loss(config, logits, y),
                    optimizer,
                    model=self.net,
                    ewc=self.ewc,
                    after_backward=recorder.observe,
                )
            except NonFiniteLoss as exc:
                raise LearngeneError(
                    f"{exc} in task {self._task}, epoch {epoch}: lower the learning rate (now {config.lr}); "
                    f"finished tasks ({self._task}) stay saved"
                ) from None
            if epoch == 0 and start == 0:
                self._first_loss = float(loss)
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        ec = recorder.result()
        self._grad_norm = tuple(float(g) for g in ec.grad_norm)
        self.criterion.record(self._task, epoch, ec)
        row = {"kind": "epoch", "task": self._task, "epoch": epoch, "loss": loss_sum / n, "accuracy": correct / n}
        self.metric_rows.append(row)
        emit(
            self.listeners,
            EpochEnded(
                self._task,
                epoch,
                config.epochs,
                row["loss"],
                row["accuracy"],
                ec.layer_names,
                ec.signed,
                ec.absolute,
                ec.hist,
                ec.grad_norm,
            ),
        )

    def _precise_bn(self) -> None:
        """Re-estimate BatchNorm statistics on the task's images, so the checkpoint's statistics fit its weights."""
        task = self.stream[self._task]
        recalibrate_batchnorm(self.net, normalise(self.imageset.images[task.train], self.device))

    def _consolidate(self) -> None:
        """EWC: estimate the Fisher on the task's images and anchor at the weights just learned."""
        if self.ewc is None:
            return
        task = self.stream[self._task]
        images, labels = self.imageset.images[task.train], task.train_labels
        chunks = torch.split(torch.arange(len(labels)), self.config.batch_size)
        self.ewc.consolidate(self.net, ((normalise(images[i], self.device), labels[i].to(self.device)) for i in chunks))

    def _health(self) -> Health:
        """Training accuracy, dead units, feature rank and norms right after the task (see core.collective.health)."""
        task = self.stream[self._task]
        train_x = normalise(self.imageset.images[task.train], self.device)
        return measure(
            self.net, train_x, task.train_labels.to(self.device), self.probe, self._grad_norm, self._first_loss
        )

    def _task_row(self, widened: list[tuple[str, int]], auroc_msp: float, auroc_energy: float) -> dict:
        task = self.stream[self._task]
        return {
            "kind": "task",
            "task": self._task,
            "classes": list(task.classes),
            "widths": self.net.widths(),
            "widened": [list(w) for w in widened],
            "train_accuracy": self.metric_rows[-1]["accuracy"],
            "auroc_msp": None if math.isnan(auroc_msp) else auroc_msp,
            "auroc_energy": None if math.isnan(auroc_energy) else auroc_energy,
            "params": self.net.num_parameters(),
        }


def train_collective(
    config: CollectiveConfig,
    run_dir: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    resume: bool = False,
    download: bool = False,
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
    threads: int | None = None,
    undo_failed_start: bool = False,
) -> Run:
    """Train (or resume, or reuse) a collective run in `run_dir`; every finished task is committed to disk.

    `threads`: torch threads to train with, recorded in the run; None: on resume the run's count, else torch's
    current one. Torch's count is restored afterwards. `undo_failed_start`: a new run that stops before its first
    task commits removes what this call wrote (jobs want that; the command line keeps the folder to resume).
    """
    config.validate()
    device = resolve_device(device)
    listeners = tuple(listeners)
    run_dir = Path(run_dir).expanduser()
    with RunLock(run_dir) as lock:
        run, finished, threads = _prepare(run_dir, config, resume, lock, threads)
        if finished:
            return run
        new = run is None and undo_failed_start
        try:
            with torch_threads(threads):
                return _train(config, run_dir, run, threads, root, download, device, listeners, should_stop)
        except BaseException:
            if new:
                _remove_unstarted(run_dir)
            raise


def _remove_unstarted(run_dir: Path) -> None:
    """Under the lock: remove the files this call wrote for a new run that committed no task, and the folder if that
    leaves it empty (so a failed or cancelled start leaves nothing behind, and never touches another run's files)."""
    run_dir = Path(run_dir)
    if (run_dir / MANIFEST).is_file():
        try:
            if json.loads((run_dir / MANIFEST).read_text()).get("finished_tasks", 0) > 0:
                return
        except (OSError, ValueError):
            return
    for name in (CONFIG, MANIFEST, LOCK):
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def _train(
    config: CollectiveConfig,
    run_dir: Path,
    run: Run | None,
    threads: int,
    root: str | os.PathLike | None,
    download: bool,
    device: str,
    listeners: tuple[Listener, ...],
    should_stop: Callable[[], bool] | None,
) -> Run:
    """Load the data, then start or continue the run at its first unfinished task and train to the end."""
    imageset = datasets.load(config.dataset, root, image_size=config.image_size, seed=config.seed, download=download)
    division, stream = config.stream(imageset)
    spec = initial_spec(config, imageset.channels)
    ewc = EWC(config.ewc_lambda, exclude=_head_excluder(config, spec)) if config.ewc_lambda > 0 else None
    if run is not None and run.finished_tasks > 0 and run.data_record is not None:
        check_for_resume(DataRecord.from_dict(run.data_record, str(run_dir)), imageset, str(run_dir))
    if run is None or run.finished_tasks == 0:
        start_run(run_dir, config, spec, data_record(imageset, division).as_dict(), threads)
        run = open_run(run_dir)
        net = build(spec, config.seed)
        criterion = CriterionLog.empty(spec.layer_names(), config.tau, config.epochs)
        metric_rows: list[dict] = []
        start = 0
    else:
        start = run.finished_tasks
        net = run.load_net(start - 1)
        if ewc is not None:
            ewc.load_state({k: v for k, v in run.checkpoint_tensors(start - 1).items() if k.startswith("ewc.")})
        criterion = run.criterion()
        metric_rows = run.metrics()
    net.to(device)
    probe = normalised_probe(imageset, probe_indices(imageset, division, config.seed), device)
    openworld = open_world_probe(imageset, held_out_classes(division, stream), config.seed)
    trainer = CollectiveTrainer(
        config, net, imageset, stream, criterion, metric_rows, ewc, device, listeners, should_stop, probe, openworld
    )
    for t in range(start, config.tasks):
        check_stop(should_stop)
        trainer.train_task(t)
        extra = {k: v.cpu() for k, v in ewc.state().items()} if ewc is not None else {}
        commit_task(run, t, net.to("cpu"), extra, criterion, metric_rows)
        net.to(device)
        last = metric_rows[-1]
        emit(
            listeners,
            TaskFinished(
                t,
                config.tasks,
                last["train_accuracy"],
                _nan(last["auroc_msp"]),
                _nan(last["auroc_energy"]),
                net.widths(),
                last.get("health", {}),
            ),
        )
    return run


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _head_excluder(config: CollectiveConfig, spec: NetSpec) -> Callable[[str], bool]:
    head = f"fcs.{spec.layer_names()[-1]}."
    return (lambda name: name.startswith(head)) if config.head == "per_task" else (lambda name: False)
