"""Baselines beside learngene and scratch (spec section 6): window ablations, collective fine-tuning, nearest centroids.

Each is a `Method` run by `core.individual.methods.run_methods` on the same target tasks and per-task seeds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from core.collective.network import ExpandableNet
from core.collective.runs import Run
from core.events import check_stop
from core.individual.config import IndividualConfig
from core.individual.methods import Method, individual_method
from core.individual.model import fitted_spec
from core.individual.targets import TargetTask
from core.individual.training import fit_and_test
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import Selection, block_label, windows
from core.seeding import generator


def collective_finetune_method(base: ExpandableNet, way: int, config: IndividualConfig, device: str = "cpu") -> Method:
    """Fine-tune the whole collective model (from the extraction checkpoint) with a new head."""
    probe = copy.deepcopy(base)
    probe.replace_head(way, generator(0))
    head = list(probe.fcs.values())[-1]
    head_params = sum(p.numel() for p in head.parameters())

    def run_task(target: TargetTask, should_stop: Callable[[], bool] | None) -> float:
        model = copy.deepcopy(base)
        model.replace_head(way, generator(target.seed, 41))
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        return fit_and_test(model, target, config, None, should_stop)

    total = probe.num_parameters()
    return Method("collective-finetune", "all", total, total - head_params, run_task)


def nearest_centroid_method(base: ExpandableNet, config: IndividualConfig, device: str = "cpu") -> Method:
    """Class means of the collective model's features on the support set; no training (cosine or euclidean)."""
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


def baseline_methods(
    run: Run, learngene: Learngene, way: int, config: IndividualConfig, device: str = "cpu"
) -> list[Method]:
    """Scratch is not here (see `evaluate`): window ablations, collective fine-tuning and nearest centroids."""
    names = run.spec(learngene.task).layer_names()
    methods = []
    for block in windows(names, len(learngene.layers)):
        if block == learngene.layers:
            continue
        other = extract(run, Selection(block, "window", len(block)), learngene.task)
        methods.append(
            individual_method(f"window {block_label(block)}", fitted_spec(other, way, config), config, other, device)
        )
    base = run.load_net(learngene.task)
    methods.append(collective_finetune_method(base, way, config, device))
    methods.append(nearest_centroid_method(base, config, device))
    return methods
