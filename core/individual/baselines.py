"""Inheritance strategies and baselines beside learngene and scratch (spec section 6).

Front inheritance (the block of the same length that starts at conv1), weight selection, the other windows of the
learngene's length, the collective model fine-tuned, and nearest centroids on its features. Each is a `Method` run
by `core.individual.methods.run_methods` on the same target tasks and per-task seeds.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

from core.collective.network import ExpandableNet, build
from core.collective.runs import Run
from core.events import check_stop
from core.individual.config import IndividualConfig
from core.individual.methods import Method, individual_method, selection_method, start_model
from core.individual.model import fitted_spec
from core.individual.targets import TargetTask
from core.individual.training import fit_and_test
from core.individual.twins import twin_name
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import Selection, block_label, front_block, windows

FINETUNE_HEAD = "features"  # where collective fine-tuning puts its head, part of a few-shot job's key (before: "embed")


def conv_stack_model(base: ExpandableNet, way: int, seed: int, *, inherit: bool = True) -> ExpandableNet:
    """The collective's conv stack (its trained weights, or random ones without `inherit`) under a new `way`-output
    head read straight off its features: the collective's hidden fc layers are left out."""
    model = build(dataclasses.replace(base.spec, hidden=(), num_outputs=way), seed)
    if inherit:
        model.convs.load_state_dict(base.convs.state_dict())
    return model


def collective_finetune_method(
    base: ExpandableNet, way: int, config: IndividualConfig, device: str = "cpu", *, inherit: bool = True
) -> Method:
    """Fine-tune the collective's conv stack (from the extraction checkpoint) under a new head on its features;
    without `inherit`, the same network from random weights (the size sweep's twin).

    The head starts as the prototype classifier of the features that nearest centroids read, so fine-tuning starts
    exactly at nearest centroids. The hidden fc layers are left out because they are the most specific to the source
    classes (Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS 2014): with them, on
    five glyphs runs at 1 shot, fine-tuning started 1.9 points below nearest centroids on the conv features and ended
    1.1 below; without them it ends 0.8 above (docs/results.md).
    """
    probe = conv_stack_model(base, way, 0, inherit=inherit)
    total = probe.num_parameters()
    head = sum(p.numel() for p in list(probe.fcs.values())[-1].parameters())

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        model = conv_stack_model(base, way, target.seed, inherit=inherit)
        model = start_model(model, target, config, device, inherited_features=inherit, random_collective=not inherit)
        inherited = list(model.convs.values()) if inherit else []
        return fit_and_test(model, target, config, inherited=inherited, should_stop=should_stop)

    if not inherit:
        return Method(twin_name("collective-finetune"), "none", total, 0, run_task)
    return Method("collective-finetune", "all", total, total - head, run_task)


def nearest_centroid_method(base: ExpandableNet, config: IndividualConfig, device: str = "cpu") -> Method:
    """Class means of the collective model's features on the support set; no training (cosine or euclidean).

    The prototype classifier of Snell et al. ("Prototypical Networks for Few-shot Learning", NeurIPS 2017) on
    features the collective model learned from the source tasks.
    """
    model = copy.deepcopy(base).to(device).eval()
    embed = model.features if config.centroid_features == "features" else model.embed
    used = list(model.convs.parameters())
    if config.centroid_features == "embed":
        used += [p for layer in list(model.fcs.values())[:-1] for p in layer.parameters()]
    params = sum(p.numel() for p in used)

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        check_stop(should_stop)
        with torch.no_grad():
            support, query = embed(target.support), embed(target.query)
        centroids = torch.stack(
            [support[target.support_labels == c].mean(0) for c in range(int(target.support_labels.max()) + 1)]
        )
        if config.centroid_metric == "cosine":
            scores = F.normalize(query, dim=1) @ F.normalize(centroids, dim=1).T
        else:
            scores = -torch.cdist(query, centroids)
        return float((scores.argmax(1) == target.query_labels).float().mean())

    return Method(
        "nearest-centroid", f"{config.centroid_features} ({config.centroid_metric})", params, params, run_task
    )


def front_method(run: Run, learngene: Learngene, way: int, config: IndividualConfig, device: str = "cpu") -> Method:
    """Front inheritance: the collective's layers before the learngene block, new smaller layers after them.

    The layers the paper's reconstruction replaces by a new random front. Yosinski et al. ("How transferable are
    features in deep neural networks?", NeurIPS 2014) found the first layers the most general; the block keeps the
    input layer, so no new random layer separates the inherited filters from the images.
    """
    block = front_block(run.spec(learngene.task).layer_names(), learngene.layers)
    front = extract(run, Selection(block, "front", len(block)), learngene.task)
    return individual_method(f"front {block_label(block)}", fitted_spec(front, way, config), config, front, device)


def baseline_methods(
    run: Run, learngene: Learngene, way: int, config: IndividualConfig, device: str = "cpu"
) -> list[Method]:
    """Everything but learngene and scratch: front inheritance, weight selection, the other windows of the
    learngene's length, collective fine-tuning and nearest centroids."""
    names = run.spec(learngene.task).layer_names()
    base = run.load_net(learngene.task)
    methods = []
    if not learngene.starts_at_input:
        methods.append(front_method(run, learngene, way, config, device))  # else the learngene is the front
    m = config.selection_multiplier
    methods.append(selection_method(f"weight selection x{m:g}", base, m, way, config, device=device))
    for block in windows(names, len(learngene.layers)):
        if block == learngene.layers or block[0] == "conv1":
            continue
        other = extract(run, Selection(block, "window", len(block)), learngene.task)
        methods.append(
            individual_method(f"window {block_label(block)}", fitted_spec(other, way, config), config, other, device)
        )
    methods.append(collective_finetune_method(base, way, config, device))
    methods.append(nearest_centroid_method(base, config, device))
    return methods
