"""Methods that solve a target task, run on the same target tasks with the same per-task seeds.

`individual_method` is the paper's individual model (an inherited block with new layers around it) or, without a
learngene, the same architecture from scratch. `selection_method` is weight selection (a narrower copy of the whole
collective model) or its architecture from scratch. `run_methods` trains each method on every target task and makes
its table row (`core.individual.result_row`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.batchnorm import recalibrate_batchnorm
from core.collective.ewc import EWC
from core.collective.network import ExpandableNet, NetSpec, build
from core.events import Listener, MethodFinished, TargetTaskFinished, check_stop, emit
from core.individual.config import IndividualConfig
from core.individual.head import chosen_head, prototype_head, starts_at_prototypes, use_cosine_head
from core.individual.model import IndividualNet, IndividualSpec, build_individual, narrow_spec
from core.individual.result_row import ResultRow
from core.individual.stacked import fit_and_test_stacked
from core.individual.targets import Targets, TargetTask
from core.individual.training import batches, fit_and_test, layout
from core.individual.weight_selection import select_weights
from core.learngene.gene import Learngene
from core.learngene.selection import block_label

StopCheck = Callable[[], bool] | None


@dataclass(frozen=True, eq=False)
class Method:
    """A way to solve a target task: name, which layers it inherits, its size, and a per-task runner."""

    name: str
    layers: str
    params: int
    inherited_params: int
    run_task: Callable[[TargetTask, StopCheck], float]
    run_group: Callable[[Sequence[TargetTask], StopCheck], list[float]] | None = None
    stack: int = 1  # how many target tasks run_group trains side by side


def start_model(
    model: nn.Module,
    target: TargetTask,
    config: IndividualConfig,
    device: str,
    *,
    fit_statistics: bool = False,
    inherited_features: bool = False,
    random_collective: bool = False,
) -> nn.Module:
    """The model on its device and layout, its BatchNorm statistics fitted to the support set when asked, and its
    head made and started as the config says (`inherited_features`: every layer before the head is inherited;
    `random_collective`: the collective's architecture from random weights)."""
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if fit_statistics:
        recalibrate_batchnorm(model, target.support, lambda x: layout(x, config))
    if chosen_head(config.head, random_collective=random_collective) == "cosine":
        use_cosine_head(model, config.head_scale)
    if starts_at_prototypes(config.head_init, inherited_features):
        prototype_head(model, layout(target.support, config), target.support_labels)
    return model


def individual_method(
    name: str,
    spec: IndividualSpec,
    config: IndividualConfig,
    learngene: Learngene | None,
    device: str = "cpu",
) -> Method:
    """An individual model: inherited block (learngene given) or the same architecture from random init (None).

    The paper's reconstruction (Wang et al., AAAI 2022, section "individual model"): the learngene block with new
    layers around it and a new head, trained on the target task's support set.
    """
    probe = build_individual(spec, 0, learngene)
    whole = learngene is not None and not spec.front_widths and not spec.back_widths

    def model_for(target: TargetTask) -> IndividualNet:
        model = build_individual(spec, target.seed, learngene)
        return start_model(model, target, config, device, inherited_features=whole)

    def run_task(target: TargetTask, should_stop: StopCheck) -> float:
        model = model_for(target)
        inherited = [model.block] if learngene is not None else []
        ewc = None
        if inherited and config.ewc_lambda > 0 and not config.freeze:
            ewc = EWC(config.ewc_lambda, exclude=lambda n: not n.startswith("block."))
            support_batches = [
                (layout(target.support[i], config), target.support_labels[i])
                for i in batches(torch.arange(len(target.support_labels)), config.batch_size)
            ]
            ewc.consolidate(model, support_batches)
        return fit_and_test(model, target, config, inherited=inherited, ewc=ewc, should_stop=should_stop)

    def run_group(targets: Sequence[TargetTask], should_stop: StopCheck) -> list[float]:
        models = [model_for(t) for t in targets]
        return fit_and_test_stacked(models, targets, config, inherit=learngene is not None, should_stop=should_stop)

    inherited = probe.inherited_parameters() if learngene is not None else 0
    stackable = config.stack > 1 and not (learngene is not None and config.ewc_lambda > 0 and not config.freeze)
    group = run_group if stackable else None
    return Method(
        name, block_label(spec.block_layers), probe.num_parameters(), inherited, run_task, group, config.stack
    )


def _inherited_modules(net: ExpandableNet) -> list[nn.Module]:
    """The parts of a selected network taken from the collective model: every layer but the new head."""
    return list(net.convs.values()) + list(net.fcs.values())[:-1]


def selection_method(
    name: str,
    base: ExpandableNet,
    multiplier: float,
    way: int,
    config: IndividualConfig,
    *,
    inherit: bool = True,
    device: str = "cpu",
) -> Method:
    """Weight selection (Xu et al., "Initializing Models with Larger Ones", ICLR 2024) or its architecture, random.

    A copy of the collective network at `multiplier` of its widths whose every layer takes evenly spaced channels
    of the collective's trained layer (BatchNorm statistics with them); the head is new. Without `inherit`, the
    same narrow network starts from random weights.
    """
    spec: NetSpec = narrow_spec(base.spec, multiplier, way)

    def model_for(seed: int) -> ExpandableNet:
        return select_weights(base, spec, seed) if inherit else build(spec, seed)

    def run_task(target: TargetTask, should_stop: StopCheck) -> float:
        # selected channels see fewer inputs than in the collective: their statistics are measured again
        model = start_model(
            model_for(target.seed),
            target,
            config,
            device,
            fit_statistics=inherit and multiplier < 1,
            inherited_features=inherit,
            random_collective=not inherit,
        )
        inherited = _inherited_modules(model) if inherit else []
        return fit_and_test(model, target, config, inherited=inherited, should_stop=should_stop)

    probe = model_for(0)
    params = probe.num_parameters()
    head = sum(p.numel() for p in list(probe.fcs.values())[-1].parameters())
    layers = f"all x{multiplier:g}" if inherit else f"none x{multiplier:g}"
    return Method(name, layers, params, params - head if inherit else 0, run_task)


def run_methods(
    methods: Iterable[Method],
    targets: Targets,
    *,
    size: str = "",
    listeners: Iterable[Listener] = (),
    should_stop: StopCheck = None,
) -> list[dict]:
    """Run every method on every target task; emit TargetTaskFinished per task and MethodFinished per method.

    Methods that can train several tasks side by side do so, `method.stack` consecutive tasks of equal size at once.
    """
    listeners = tuple(listeners)
    rows = []
    for method in methods:
        started = time.perf_counter()
        accuracies = []
        for group in _groups(targets.tasks, method.stack if method.run_group is not None else 1):
            check_stop(should_stop)
            if len(group) > 1:
                results = method.run_group(group, should_stop)
            else:
                results = [method.run_task(group[0], should_stop)]
            for target, acc in zip(group, results):
                accuracies.append(acc)
                emit(
                    listeners,
                    TargetTaskFinished(method.name, target.task.task_id, len(targets.tasks), acc, method.params, size),
                )
        row = ResultRow(
            method.name,
            method.params,
            tuple(accuracies),
            targets.way,
            targets.shot,
            method.layers,
            method.inherited_params,
            round(time.perf_counter() - started, 3),
            size,
        ).as_dict()
        rows.append(row)
        emit(listeners, MethodFinished(dict(row)))
    return rows


def _groups(tasks: Sequence[TargetTask], size: int) -> list[list[TargetTask]]:
    """Consecutive runs of at most `size` tasks with equally many support and query images."""
    groups: list[list[TargetTask]] = []
    for task in tasks:
        last = groups[-1] if groups else None
        fits = last is not None and len(last) < size
        if fits and (len(task.support_labels), len(task.query_labels)) == (
            len(last[0].support_labels),
            len(last[0].query_labels),
        ):
            last.append(task)
        else:
            groups.append([task])
    return groups
