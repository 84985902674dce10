"""Health of the collective model after each task: can it still learn? (loss of plasticity, Dohare et al., Nature 2024).

Measured on the task's own training images and on a fixed probe batch of source images: training accuracy, the
fraction of dead ReLU units per layer (never active on the probe batch), the effective rank of the penultimate
features, and weight and gradient norms per layer. A network whose training accuracy falls towards chance, whose
units die and whose features collapse to a few directions has lost its plasticity: its small gradients are then
not a sign of stable, inheritable layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.collective.network import ExpandableNet
from core.data.division import ClassDivision
from core.data.imageset import ImageSet
from core.data.transforms import normalise
from core.seeding import generator

PROBE_IMAGES = 512
RANK_TOLERANCE = 1e-3  # singular values above this fraction of the largest count towards the rank
UNHEALTHY_ACCURACY = 0.5
COLLAPSED_RANK = 0.25  # of the first task's rank


@dataclass(frozen=True)
class Health:
    """One task's health record, as stored in the task row of metrics.jsonl."""

    train_accuracy: float
    feature_rank: int
    dead_fraction: dict[str, float]
    weight_norm: dict[str, float]
    grad_norm: dict[str, float]
    first_loss: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "train_accuracy": self.train_accuracy,
            "feature_rank": self.feature_rank,
            "dead_fraction": dict(self.dead_fraction),
            "weight_norm": dict(self.weight_norm),
            "grad_norm": dict(self.grad_norm),
            "first_loss": self.first_loss,
        }


def probe_indices(imageset: ImageSet, division: ClassDivision, seed: int, count: int = PROBE_IMAGES) -> torch.Tensor:
    """A fixed batch of images of the source classes, the same for every task of a run (and after a resume)."""
    source = torch.tensor(division.source, dtype=torch.int64)
    pool = torch.nonzero(torch.isin(imageset.labels, source)).flatten()
    order = torch.randperm(len(pool), generator=generator(seed, 12))
    return pool[order[:count]].sort().values


def effective_rank(features: torch.Tensor, tolerance: float = RANK_TOLERANCE) -> int:
    """Number of singular values of a (samples, dims) matrix above `tolerance` times the largest (0 if all zero)."""
    singular = torch.linalg.svdvals(features.double())
    if singular.numel() == 0 or singular[0] <= 0:
        return 0
    return int((singular > tolerance * singular[0]).sum())


def dead_fractions(net: ExpandableNet, probe: torch.Tensor, chunk: int = 128) -> dict[str, float]:
    """Per ReLU layer, the fraction of units (conv channels, fc neurons) never active on the probe batch.

    The probe goes through in chunks, keeping each unit's largest output, so memory stays that of one chunk.
    """
    was_training = net.training
    net.eval()
    peak: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for start in range(0, len(probe), chunk):
            for name, out in net.activations(probe[start : start + chunk]).items():
                largest = out.transpose(0, 1).reshape(out.shape[1], -1).amax(dim=1)
                peak[name] = largest if name not in peak else torch.maximum(peak[name], largest)
    net.train(was_training)
    return {name: float((largest <= 0).float().mean()) for name, largest in peak.items()}


def measure(
    net: ExpandableNet,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    probe: torch.Tensor,
    grad_norm: Sequence[float],
    first_loss: float,
) -> Health:
    """The health of `net` right after a task (eval mode: no dropout, BatchNorm running statistics)."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(train_x[i : i + 256]).argmax(1) for i in range(0, len(train_y), 256)])
        rank = effective_rank(torch.cat([net.embed(probe[i : i + 256]) for i in range(0, len(probe), 256)]))
    net.train(was_training)
    layers = net.weight_layers()
    return Health(
        train_accuracy=float((predicted == train_y).float().mean()),
        feature_rank=rank,
        dead_fraction=dead_fractions(net, probe),
        weight_norm={name: float(module.weight.detach().norm()) for name, module in layers.items()},
        grad_norm={name: float(g) for name, g in zip(layers, grad_norm)},
        first_loss=first_loss,
    )


def normalised_probe(imageset: ImageSet, indices: torch.Tensor, device: str) -> torch.Tensor:
    """The probe images as the network reads them."""
    return normalise(imageset.images[indices], device)


def unhealthy_tasks(rows: Sequence[dict[str, Any]]) -> list[bool]:
    """Per health row (task order): whether the network could not learn there.

    Unhealthy means a training accuracy below 0.5, or a feature rank below a quarter of the first task's (collapse).
    """
    if not rows:
        return []
    start = max(rows[0]["feature_rank"], 1)
    return [row["train_accuracy"] < UNHEALTHY_ACCURACY or row["feature_rank"] < COLLAPSED_RANK * start for row in rows]


def health_rows(metric_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The health record of every finished task (task order), each with its task index and a `healthy` verdict.

    Empty when the run was trained before health was recorded.
    """
    rows = [dict(task=r["task"], **r["health"]) for r in metric_rows if r.get("kind") == "task" and "health" in r]
    for row, bad in zip(rows, unhealthy_tasks(rows)):
        row["healthy"] = not bad
    return rows
