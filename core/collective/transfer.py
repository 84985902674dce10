"""The transfer criterion: per layer and source task, how well the layer's features tell apart classes the source
stream never trains on.

The estimator is nearest-centroid accuracy (the prototype classifier of Snell et al., "Prototypical Networks for
Few-shot Learning", NeurIPS 2017; cosine similarity as in Chen et al., "A Closer Look at Few-shot Classification",
ICLR 2019) of a layer's globally average-pooled ReLU output, averaged over a fixed, seeded set of 50 episodes, 5-way
1-shot with 5 queries per class. Their classes are (a seeded choice of at most 20 of) the run's open-world classes
that no task of its source stream uses (the stream mixes the open-world pool in from `open_world_from` on, so the
classes it picks are left out), never the novel classes the individual models are tested on; each class contributes
a fixed set of 6 images, so one forward pass of at most 120 images per task serves every episode. It is measured on
the network exactly as each task's checkpoint holds it, so a run written before it was recorded gets the same numbers
from its checkpoints (core.collective.transfer_runs).

Its layer score is the open-world error, 1 - accuracy: lower means a layer whose features transfer better, the same
direction as the paper's stability score, so the threshold and top-k rules apply to it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.collective.network import ExpandableNet
from core.data.division import ClassDivision
from core.data.imageset import ImageSet
from core.data.tasks import SourceTask
from core.data.transforms import normalise
from core.seeding import generator

WAY, SHOT, QUERY, EPISODES, CLASSES = 5, 1, 5, 50, 20
KEY = "transfer"  # the task row's entry in metrics.jsonl: {layer: open-world nearest-centroid accuracy}
_STAGE = 60  # seeding stage of the episodes (see core.seeding)


@dataclass(frozen=True, eq=False)
class OpenWorldProbe:
    """A fixed set of episodes over some images: `images` indexes the image set; episodes index `images`."""

    classes: tuple[int, ...]
    images: torch.Tensor  # (M,) image indices
    support: torch.Tensor  # (episodes, way * shot) positions in `images`
    support_labels: torch.Tensor  # (way * shot,) 0..way-1
    query: torch.Tensor  # (episodes, way * query)
    query_labels: torch.Tensor  # (way * query,)

    @property
    def way(self) -> int:
        """Classes per episode."""
        return int(self.support_labels.max()) + 1


def held_out_classes(division: ClassDivision, stream: list[SourceTask]) -> tuple[int, ...]:
    """The open-world classes that no task of the stream trains on."""
    used = {c for task in stream for c in task.classes}
    return tuple(c for c in division.open_world if c not in used)


def open_world_probe(
    imageset: ImageSet,
    classes: tuple[int, ...],
    seed: int,
    *,
    way: int = WAY,
    shot: int = SHOT,
    query: int = QUERY,
    episodes: int = EPISODES,
    most: int = CLASSES,
) -> OpenWorldProbe | None:
    """`episodes` seeded `way`-way `shot`-shot episodes over `most` of `classes` (a seeded choice), each class
    drawing on a fixed seeded set of `shot + query` of its images (so one forward pass of at most `most` times that
    many images serves every episode); fewer ways or queries when fewer classes or images exist, down to 2 ways and 1
    query; None below that."""
    if len(classes) > most:
        keep = torch.randperm(len(classes), generator=generator(seed, _STAGE, 2))[:most]
        classes = tuple(classes[i] for i in sorted(keep.tolist()))
    by_class = imageset.indices_by_class()
    per_class = min((len(by_class[c]) for c in classes), default=0)
    way, query = min(way, len(classes)), min(query, per_class - shot)
    if way < 2 or query < 1:
        return None
    own = {c: by_class[c][torch.randperm(len(by_class[c]), generator=generator(seed, _STAGE, 0, c))] for c in classes}
    images = torch.cat([own[c][: shot + query] for c in classes])
    support, queries = [], []
    for e in range(episodes):
        g = generator(seed, _STAGE, 1, e)
        chosen = torch.randperm(len(classes), generator=g)[:way].tolist()
        picks = [i * (shot + query) + torch.randperm(shot + query, generator=g) for i in chosen]
        support.append(torch.cat([p[:shot] for p in picks]))
        queries.append(torch.cat([p[shot:] for p in picks]))
    return OpenWorldProbe(
        classes=tuple(classes),
        images=images,
        support=torch.stack(support),
        support_labels=torch.arange(way).repeat_interleave(shot),
        query=torch.stack(queries),
        query_labels=torch.arange(way).repeat_interleave(query),
    )


def nearest_centroid_accuracy(
    features: torch.Tensor, probe: OpenWorldProbe, support: torch.Tensor, query: torch.Tensor
) -> float:
    """Mean over episodes of the query accuracy of cosine nearest-centroid classification (features: (M, D))."""
    feats = F.normalize(features.double(), dim=1)
    way = probe.way
    s = feats[support].reshape(support.shape[0], way, -1, feats.shape[1])  # (episodes, way, shot, D)
    centroids = F.normalize(s.mean(2), dim=2)
    q = feats[query]  # (episodes, way * query, D)
    predicted = torch.einsum("eqd,ewd->eqw", q, centroids).argmax(2)
    return float((predicted == probe.query_labels).double().mean())


def pooled_activations(
    net: ExpandableNet, images: torch.Tensor, device: str, chunk: int = 256
) -> dict[str, torch.Tensor]:
    """Every ReLU layer's output on `images` (uint8), conv outputs averaged over space: (M, channels) per layer."""
    net.eval()
    out: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for part in images.split(chunk):
            for name, value in net.activations(normalise(part, device)).items():
                pooled = value.mean(dim=(2, 3)) if value.dim() == 4 else value
                out.setdefault(name, []).append(pooled.double().cpu())
    return {name: torch.cat(parts) for name, parts in out.items()}


def layer_accuracies(net: ExpandableNet, imageset: ImageSet, probe: OpenWorldProbe, device: str = "cpu") -> dict:
    """{layer: open-world nearest-centroid accuracy} for every layer with a ReLU output (the head has none)."""
    features = pooled_activations(net, imageset.images[probe.images], device)
    return {name: nearest_centroid_accuracy(f, probe, probe.support, probe.query) for name, f in features.items()}


def accuracy_matrix(rows: list[dict], layer_names: tuple[str, ...]) -> np.ndarray:
    """(T, L) accuracies from per-task {layer: accuracy} dicts (NaN for a layer without one)."""
    matrix = np.full((len(rows), len(layer_names)), np.nan)
    for t, row in enumerate(rows):
        for j, name in enumerate(layer_names):
            value = row.get(name)
            matrix[t, j] = np.nan if value is None else float(value)
    return matrix
