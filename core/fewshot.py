"""Few-shot evaluation of individual models and baselines on target tasks from the run's novel classes (spec 5-7).

Every method sees the same target tasks and, per task, the same seed; each task gets a fresh model (the official
code reuses one). Evaluation is deterministic (normalise only); training may use light shift augmentation.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from core import datasets
from core.atomic import write_json, write_text
from core.collective import division_for
from core.errors import LearngeneError
from core.events import Listener, MethodFinished, TargetTaskFinished, check_stop, emit
from core.ewc import EWC
from core.imageset import ImageSet
from core.individual import IndividualSpec, build_individual, fit_spec
from core.learngene import Learngene
from core.runs import Run
from core.selection import block_label
from core.stats import mean_ci95
from core.tasks import FewShotTask, few_shot_tasks, generator
from core.transforms import augment, normalise

ROW_FIELDS = ("method", "layers", "params", "inherited_params", "mean_accuracy", "ci95", "tasks", "way", "shot", "seconds")
OPTIMIZERS = ("sgd", "adam")
CENTROID_FEATURES = ("features", "embed")
CENTROID_METRICS = ("cosine", "euclidean")


@dataclass(frozen=True)
class IndividualConfig:
    """How individual models are built and trained on a target task; defaults are tuned for a fast CPU re-run."""

    preset: str = "fast"
    epochs: int = 12
    lr: float = 0.015
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 25
    optimizer: str = "sgd"
    reset_optimizer: bool = False
    query: int = 10
    freeze: bool = False
    ewc_lambda: float = 0.0
    width_multiplier: float = 1.0
    front_depth: int | None = None
    front_widths: tuple[int, ...] | None = None
    front_pools: tuple[int, ...] | None = None
    head_hidden: tuple[int, ...] = (64,)
    augment: bool = True
    recalibrate_bn: bool = True
    channels_last: bool = True
    centroid_features: str = "features"
    centroid_metric: str = "cosine"
    seed: int = 0

    def validate(self) -> "IndividualConfig":
        """Return self, or raise LearngeneError naming the first bad setting and its valid range."""
        checks = [
            (1 <= self.epochs <= 10_000, "--epochs must be between 1 and 10000"),
            (0 < self.lr <= 10, "learning rate must be in (0, 10]"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight decay must be 0 or more"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.query >= 1, "--query must be at least 1"),
            (self.ewc_lambda >= 0, "EWC lambda must be 0 or more"),
            (0 < self.width_multiplier <= 64, "the front width multiplier must be in (0, 64]"),
            (self.front_depth is None or 1 <= self.front_depth <= 64, "--front-depth must be between 1 and 64"),
            (len(self.head_hidden) <= 8 and all(1 <= h <= 16_384 for h in self.head_hidden), "head widths must be 1 to 16384, at most 8 of them"),
            (self.front_widths is None or all(1 <= w <= 16_384 for w in self.front_widths), "front widths must be 1 to 16384"),
            (self.centroid_features in CENTROID_FEATURES, f"centroid features must be one of {', '.join(CENTROID_FEATURES)}"),
            (self.centroid_metric in CENTROID_METRICS, f"centroid metric must be one of {', '.join(CENTROID_METRICS)}"),
            (self.seed >= 0, "--seed must be 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise LearngeneError(message)
        return self

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)


INDIVIDUAL_PRESETS: dict[str, IndividualConfig] = {
    "fast": IndividualConfig(),
    "paper": IndividualConfig(
        preset="paper",
        epochs=30,
        lr=0.005,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=32,
        query=100,
        front_widths=(64, 128, 256, 512),
        front_pools=(1, 2, 3),
        head_hidden=(1024, 1024),
        augment=True,
        channels_last=True,
    ),
}


def individual_preset(name: str, **overrides: object) -> IndividualConfig:
    """A preset with some settings overridden (None values are ignored), validated."""
    if name not in INDIVIDUAL_PRESETS:
        raise LearngeneError(f"unknown individual preset {name!r}: choose one of {', '.join(INDIVIDUAL_PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(INDIVIDUAL_PRESETS[name], **changes).validate()


# ---------------------------------------------------------------- target tasks


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
    """The M target tasks of one evaluation."""

    way: int
    shot: int
    query: int
    tasks: tuple[TargetTask, ...]


@functools.lru_cache(maxsize=2)
def _imageset(dataset: str, root: str | None, image_size: int, seed: int) -> ImageSet:
    return datasets.load(dataset, root, image_size=image_size, seed=seed)


def run_imageset(run: Run, root: str | None = None) -> ImageSet:
    """The run's dataset, kept in memory for repeated evaluations in one process."""
    root = None if root is None else str(root)
    return _imageset(run.config.dataset, root, run.config.image_size, run.config.seed)


def task_seed(seed: int, task_id: int) -> int:
    """The seed every method uses for target task `task_id` (model init, batch order, augmentation)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator(seed, 21, task_id)))


def fitting_query(query: int, imageset: ImageSet, shot: int) -> int:
    """`query` images per class, lowered to what is left after `shot` (at least 1; few_shot_tasks reports a shortfall)."""
    return max(1, min(query, imageset.images_per_class() - shot))


def make_targets(run: Run, imageset: ImageSet, *, way: int, shot: int, query: int, tasks: int, seed: int, device: str = "cpu") -> Targets:
    """M target tasks from the run's novel classes, images normalised once."""
    novel = division_for(run.config, imageset).novel
    chosen = few_shot_tasks(imageset, novel, way=way, shot=shot, query=query, tasks=tasks, seed=seed)
    out = []
    for t in chosen:
        out.append(
            TargetTask(
                task=t,
                support=normalise(imageset.images[t.support], device),
                support_labels=t.support_labels.to(device),
                query=normalise(imageset.images[t.query], device),
                query_labels=t.query_labels.to(device),
                seed=task_seed(seed, t.task_id),
            )
        )
    return Targets(way, shot, query, tuple(out))


# ---------------------------------------------------------------- training and testing


def _batches(order: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Mini-batches of a permutation; a trailing batch of one joins the previous one (BatchNorm needs two)."""
    parts = list(torch.split(order, size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def _layout(x: torch.Tensor, config: IndividualConfig) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: IndividualConfig,
    seed: int,
    *,
    ewc: EWC | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Train on the support set for config.epochs with a fresh optimiser (optionally reset every epoch)."""
    g = generator(seed, 31)
    params = [p for p in model.parameters() if p.requires_grad]

    def optimizer() -> torch.optim.Optimizer:
        if config.optimizer == "adam":
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)

    opt = optimizer()
    for epoch in range(config.epochs):
        if config.reset_optimizer and epoch > 0:
            opt = optimizer()
        model.train()
        for idx in _batches(torch.randperm(len(y), generator=g), config.batch_size):
            check_stop(should_stop)
            xb = augment(x[idx], g) if config.augment else x[idx]
            loss = F.cross_entropy(model(_layout(xb, config)), y[idx])
            if ewc is not None:
                loss = loss + ewc.penalty(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def recalibrate_bn(model: nn.Module, x: torch.Tensor, config: IndividualConfig) -> None:
    """Re-estimate trainable BatchNorm layers' running statistics on the (unaugmented) support set, then eval mode.

    Running statistics that lag behind the training (an inherited block keeps a few per cent of its source
    statistics after a short run) otherwise decide test accuracy; frozen layers keep theirs.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.weight.requires_grad]
    model.eval()
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for start in range(0, len(x), 256):
            model(_layout(x[start : start + 256], config))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def fit_and_test(model: nn.Module, target: TargetTask, config: IndividualConfig, ewc: EWC | None, should_stop: Callable[[], bool] | None) -> float:
    """Train on the support set, optionally recalibrate BatchNorm, and return query accuracy.

    Dropout draws from torch's global generator, so it is seeded from the task here (and restored afterwards).
    """
    devices = [p.device.index or 0 for p in list(model.parameters())[:1] if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(target.seed)
        train(model, target.support, target.support_labels, config, target.seed, ewc=ewc, should_stop=should_stop)
    if config.recalibrate_bn:
        recalibrate_bn(model, target.support, config)
    return accuracy(model, target.query, target.query_labels, config)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: IndividualConfig) -> float:
    """Top-1 accuracy in eval mode (deterministic: no augmentation, BN running statistics, no dropout)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), 256):
            logits = model(_layout(x[start : start + 256], config))
            correct += int((logits.argmax(1) == y[start : start + 256]).sum())
    return correct / len(y)


# ---------------------------------------------------------------- methods


@dataclass(frozen=True, eq=False)
class Method:
    """A way to solve a target task: name, which layers it inherits, its size, and a per-task runner."""

    name: str
    layers: str
    params: int
    inherited_params: int
    run_task: Callable[[TargetTask, Callable[[], bool] | None], float]


def individual_method(
    name: str,
    spec: IndividualSpec,
    config: IndividualConfig,
    learngene: Learngene | None,
    device: str = "cpu",
) -> Method:
    """An individual model: inherited block (learngene given) or the same architecture from random init (None)."""
    probe = build_individual(spec, 0, learngene)

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        model = build_individual(spec, target.seed, learngene)
        if learngene is not None and config.freeze:
            model.freeze_block()
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        ewc = None
        if learngene is not None and config.ewc_lambda > 0 and not config.freeze:
            ewc = EWC(config.ewc_lambda, exclude=lambda n: not n.startswith("block."))
            batches = [(_layout(target.support[i], config), target.support_labels[i]) for i in _batches(torch.arange(len(target.support_labels)), config.batch_size)]
            ewc.consolidate(model, batches)
        return fit_and_test(model, target, config, ewc, should_stop)

    inherited = probe.inherited_parameters() if learngene is not None else 0
    return Method(name, block_label(spec.block_layers), probe.num_parameters(), inherited, run_task)


def run_methods(
    methods: Iterable[Method],
    targets: Targets,
    *,
    size: str = "",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Run every method on every target task; emit TargetTaskFinished per task and MethodFinished per method."""
    listeners = tuple(listeners)
    rows = []
    for method in methods:
        started = time.perf_counter()
        accuracies = []
        for target in targets.tasks:
            check_stop(should_stop)
            acc = method.run_task(target, should_stop)
            accuracies.append(acc)
            emit(listeners, TargetTaskFinished(method.name, target.task.task_id, len(targets.tasks), acc, method.params, size))
        mean, half = mean_ci95(accuracies)
        row = {
            "method": method.name,
            "layers": method.layers,
            "params": method.params,
            "inherited_params": method.inherited_params,
            "mean_accuracy": mean,
            "ci95": None if math.isnan(half) else half,
            "tasks": len(accuracies),
            "way": targets.way,
            "shot": targets.shot,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if size:
            row["size"] = size
        rows.append(row)
        emit(listeners, MethodFinished(dict(row)))
    return rows


# ---------------------------------------------------------------- one evaluation


def fitted_spec(learngene: Learngene, way: int, config: IndividualConfig) -> IndividualSpec:
    """The individual architecture for a learngene under a config."""
    return fit_spec(
        learngene,
        way,
        front_depth=config.front_depth,
        width_multiplier=config.width_multiplier,
        front_widths=config.front_widths,
        front_pools=config.front_pools,
        head_hidden=config.head_hidden,
    )


def evaluate(
    run: Run,
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
    """The results table: learngene and scratch (same architecture), plus the baselines when asked.

    Without `targets`, M tasks are drawn with config.query query images per class (fewer if the classes run out).
    """
    config.validate()
    if targets is None:
        imageset = run_imageset(run, root)
        query = fitting_query(config.query, imageset, shot)
        targets = make_targets(run, imageset, way=way, shot=shot, query=query, tasks=tasks, seed=config.seed, device=device)
    spec = fitted_spec(learngene, targets.way, config)
    methods = [individual_method("learngene", spec, config, learngene, device), individual_method("scratch", spec, config, None, device)]
    if baselines:
        from core.baselines import baseline_methods  # baselines build on this module's methods

        methods += baseline_methods(run, learngene, targets.way, config, device)
    return run_methods(methods, targets, listeners=listeners, should_stop=should_stop)


# ---------------------------------------------------------------- writing tables


def jsonable(value: object) -> object:
    """A copy with non-finite floats as None and tuples as lists, so JSON stays standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def tidy(rows: Iterable[dict]) -> list[dict]:
    """Rows with NaN as None, ready for JSON."""
    return [jsonable(row) for row in rows]


def write_csv(rows: list[dict], path: str | Path) -> None:
    """Write rows as CSV atomically (columns: ROW_FIELDS, then any others in first-seen order)."""
    columns = list(ROW_FIELDS) + [k for row in rows for k in row if k not in ROW_FIELDS]
    columns = list(dict.fromkeys(columns))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in tidy(rows):
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    write_text(path, buffer.getvalue())


def write_results_json(result: dict, path: str | Path) -> None:
    """Write a result object as JSON atomically (NaN as null)."""
    write_json(path, jsonable(result))
