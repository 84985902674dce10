"""Sequential training of the expandable collective model over the source stream, recording the criterion."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from core import datasets
from core.cifar100 import paper_division
from core.config import CollectiveConfig
from core.criterion import CriterionLog, EpochRecorder
from core.errors import LearngeneError
from core.events import EpochEnded, Listener, TaskFinished, TaskStarted, check_stop, emit
from core.ewc import EWC
from core.imageset import ImageSet
from core.network import ExpandableNet, NetSpec, build
from core.openworld import auroc, unknown_scores
from core.runs import CONFIG, Run, RunLock, commit_task, config_differences, open_run, settle_pending, start_run
from core.tasks import ClassDivision, SourceTask, divide_classes, generator, source_stream
from core.transforms import augment, normalise
from core.widening import apply_schedule


def division_for(config: CollectiveConfig, imageset: ImageSet) -> ClassDivision:
    """The class division of a run: the paper's for CIFAR-100, a seeded one otherwise."""
    fixed = paper_division(list(imageset.class_names)) if config.dataset == "cifar100" else None
    return divide_classes(
        imageset.num_classes,
        seed=config.seed,
        novel_fraction=config.novel_fraction,
        open_world_fraction=config.open_world_fraction,
        fixed=fixed,
    )


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


def _open_world_auroc(net: ExpandableNet, imageset: ImageSet, stream: list[SourceTask], task: int, device: str) -> tuple[float, float]:
    """AUROC of held-out images of task `task`'s new classes (unknown) against held-out images of seen classes."""
    seen: dict[int, torch.Tensor] = {}
    for earlier in stream[:task]:
        for i, c in enumerate(earlier.classes):
            seen[c] = earlier.heldout[earlier.heldout_labels == i]
    current = stream[task]
    new = [current.heldout[current.heldout_labels == i] for i, c in enumerate(current.classes) if c not in seen]
    if not seen or not new:
        return math.nan, math.nan
    known_idx, unknown_idx = torch.cat(list(seen.values())), torch.cat(new)
    if len(known_idx) == 0 or len(unknown_idx) == 0:
        return math.nan, math.nan
    net.eval()
    with torch.no_grad():
        known = unknown_scores(net(normalise(imageset.images[known_idx], device)).cpu())
        unknown = unknown_scores(net(normalise(imageset.images[unknown_idx], device)).cpu())
    return auroc(unknown[0], known[0]), auroc(unknown[1], known[1])


def _prepare(run_dir: Path, config: CollectiveConfig, resume: bool) -> tuple[Run | None, bool]:
    """Check an existing run directory against the config; return (run, reusable-as-finished)."""
    if not (run_dir / CONFIG).exists():
        return None, False
    run = open_run(run_dir)
    settle_pending(run)
    diffs = config_differences(run.config, config)
    if diffs:
        raise LearngeneError(
            f"{run_dir} holds a run with other settings ({', '.join(diffs)}): choose another --run-dir or delete that one"
        )
    if run.complete:
        return run, True
    if run.finished_tasks > 0 and not resume:
        raise LearngeneError(
            f"{run_dir} holds a run interrupted after {run.finished_tasks} of {config.tasks} tasks: pass --resume to continue it"
        )
    return run, False


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
) -> Run:
    """Train (or resume, or reuse) a collective run in `run_dir`; every finished task is committed to disk."""
    config.validate()
    device = resolve_device(device)
    listeners = tuple(listeners)
    run_dir = Path(run_dir).expanduser()
    with RunLock(run_dir):
        run, finished = _prepare(run_dir, config, resume)
        if finished:
            return run
        imageset = datasets.load(config.dataset, root, image_size=config.image_size, seed=config.seed, download=download)
        stream = source_stream(
            imageset,
            division_for(config, imageset),
            tasks=config.tasks,
            classes_per_task=config.classes_per_task,
            images_per_class=config.images_per_class,
            heldout_per_class=config.heldout_per_class,
            seed=config.seed,
            open_world_from=config.open_world_from,
        )
        spec = initial_spec(config, imageset.channels)
        ewc = EWC(config.ewc_lambda, exclude=_head_excluder(config, spec)) if config.ewc_lambda > 0 else None
        if run is None or run.finished_tasks == 0:
            start_run(run_dir, config, spec)
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
        for t in range(start, config.tasks):
            check_stop(should_stop)
            _train_task(config, net, ewc, imageset, stream, t, device, criterion, metric_rows, listeners, should_stop)
            extra = {k: v.cpu() for k, v in ewc.state().items()} if ewc is not None else {}
            commit_task(run, t, net.to("cpu"), extra, criterion, metric_rows)
            net.to(device)
            last = metric_rows[-1]
            emit(listeners, TaskFinished(t, config.tasks, last["train_accuracy"], _nan(last["auroc_msp"]), _nan(last["auroc_energy"]), net.widths()))
        return run


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _head_excluder(config: CollectiveConfig, spec: NetSpec) -> Callable[[str], bool]:
    head = f"fcs.{spec.layer_names()[-1]}."
    return (lambda name: name.startswith(head)) if config.head == "per_task" else (lambda name: False)


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; an unavailable device is a clear error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LearngeneError(f"device {device!r} is not available on this machine: use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise LearngeneError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    return device


def _train_task(
    config: CollectiveConfig,
    net: ExpandableNet,
    ewc: EWC | None,
    imageset: ImageSet,
    stream: list[SourceTask],
    t: int,
    device: str,
    criterion: CriterionLog,
    metric_rows: list[dict],
    listeners: tuple[Listener, ...],
    should_stop: Callable[[], bool] | None,
) -> None:
    """Widen as scheduled, then train task t for the configured epochs with a fresh optimiser."""
    g = generator(config.seed, 10, t)
    torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator(config.seed, 11, t))))
    widened = apply_schedule(net, config.widening, t, generator=g, noise=config.widen_noise)
    net.to(device)
    if widened and ewc is not None:
        ewc.rebase(net)
    if config.head == "per_task" and t > 0:
        net.replace_head(net.spec.num_outputs, generator=g)
        net.to(device)
    emit(listeners, TaskStarted(t, config.tasks, config.epochs, net.widths(), tuple(widened)))
    auroc_msp, auroc_energy = _open_world_auroc(net, imageset, stream, t, device)
    task = stream[t]
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    images, labels = imageset.images[task.train], task.train_labels
    n = len(labels)
    for epoch in range(config.epochs):
        net.train()
        recorder = EpochRecorder(net.weight_layers(), config.tau)
        order = torch.randperm(n, generator=g)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            check_stop(should_stop)
            idx = order[start : start + config.batch_size]
            x = normalise(images[idx], device)
            if config.augment:
                x = augment(x, g, flip=config.flip)
            y = labels[idx].to(device)
            logits = net(x)
            loss = task_loss(config, logits, y)
            if ewc is not None:
                loss = loss + ewc.penalty(net)
            if not torch.isfinite(loss):
                raise LearngeneError(
                    f"the loss became {loss.item()} in task {t}, epoch {epoch}: lower the learning rate (now {config.lr}); "
                    f"finished tasks ({t}) stay saved"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            recorder.observe()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        ec = recorder.result()
        criterion.record(t, epoch, ec)
        row = {"kind": "epoch", "task": t, "epoch": epoch, "loss": loss_sum / n, "accuracy": correct / n}
        metric_rows.append(row)
        emit(listeners, EpochEnded(t, epoch, config.epochs, row["loss"], row["accuracy"], ec.layer_names, ec.signed, ec.absolute, ec.hist))
    if ewc is not None:
        ewc.consolidate(net, ((normalise(images[i], device), labels[i].to(device)) for i in torch.split(torch.arange(n), config.batch_size)))
    metric_rows.append(
        {
            "kind": "task",
            "task": t,
            "classes": list(task.classes),
            "widths": net.widths(),
            "widened": [list(w) for w in widened],
            "train_accuracy": metric_rows[-1]["accuracy"],
            "auroc_msp": None if math.isnan(auroc_msp) else auroc_msp,
            "auroc_energy": None if math.isnan(auroc_energy) else auroc_energy,
            "params": net.num_parameters(),
        }
    )
