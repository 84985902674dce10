"""Does nearest-centroid error behind a random front predict how well a window transfers? Measured from a sweep.

The learngene inherits a window of layers behind new, random layers. This asks whether the open-world transfer
criterion (core.collective.transfer: cosine nearest-centroid error of a layer's average-pooled output on fixed 5-way
1-shot episodes of open-world classes the source stream never trains on; Snell et al., "Prototypical Networks for
Few-shot Learning", NeurIPS 2017) predicts window transfer once it is measured in the learngene's own situation: the
layers before the one scored replaced by freshly initialised ones (three seeds), BatchNorm statistics fitted to the
probe images, on the run's last checkpoint (the one the window study inherits from). Two scores per window: the mean
of its layers' scores (each layer behind a random front of all layers before it), and its last layer's error behind a
random front of the layers before the window. Prints each run's scores and Spearman's rho between each score and the
window study's accuracies, per run and pooled over runs (ranks within each run); a score that predicts transfer has a
negative rho (lower error, better transfer).
Usage: python benchmarks/behind_random_front.py SWEEP_FOLDER [DATA_ROOT]   (a folder whose sweep ran `windows = true`)
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

from core.batchnorm import recalibrate_batchnorm
from core.collective.network import ExpandableNet, build
from core.collective.runs import open_run
from core.collective.transfer import (
    OpenWorldProbe,
    held_out_classes,
    nearest_centroid_accuracy,
    open_world_probe,
    pooled_activations,
)
from core.data import datasets
from core.data.transforms import normalise
from core.stats import pooled_spearman, spearman

FRONT_SEEDS = (101, 102, 103)


def window_accuracies(folder: Path) -> dict[str, dict[int, dict[str, float]]]:
    """{run folder: {shot: {window: mean accuracy}}} from the sweep's window-study results."""
    found: dict[str, dict[int, dict[str, float]]] = {}
    for path in sorted((folder / "results").glob("*.json")):
        result = json.loads(path.read_text())
        if result.get("windows"):
            setup = result["setup"]
            rows = {row["layers"]: row["mean_accuracy"] for row in result["windows"]["rows"]}
            found.setdefault(setup["run_dir"], {})[int(setup["shot"])] = rows
    return found


def errors_behind(net: ExpandableNet, first: int, images: torch.Tensor, probe: OpenWorldProbe) -> dict[str, float]:
    """Every conv layer's open-world error, mean over FRONT_SEEDS, with conv layers before number `first` random."""
    names = list(net.convs)
    errors: dict[str, list[float]] = {}
    for seed in FRONT_SEEDS:
        fresh, model = build(net.spec, seed), copy.deepcopy(net)
        for name in names[: first - 1]:
            model.convs[name] = copy.deepcopy(fresh.convs[name])
        recalibrate_batchnorm(model, images, prepare=lambda chunk: normalise(chunk, "cpu"))
        for name, features in pooled_activations(model, images, "cpu").items():
            if name in net.convs:
                accuracy = nearest_centroid_accuracy(features, probe, probe.support, probe.query)
                errors.setdefault(name, []).append(1.0 - accuracy)
    return {name: float(np.mean(values)) for name, values in errors.items()}


def run_scores(run_dir: str, root: str | None) -> tuple[dict[str, float], dict[str, float]]:
    """({layer: error behind a random front of the layers before it}, {window: its last layer's error behind a
    random front of the layers before the window}) on the run's last checkpoint."""
    run = open_run(run_dir)
    config = run.config
    imageset = datasets.load(config.dataset, root, image_size=config.image_size, seed=config.seed)
    division, stream = config.stream(imageset)
    probe = open_world_probe(imageset, held_out_classes(division, stream), config.seed)
    net = run.load_net(run.finished_tasks - 1)
    images = imageset.images[probe.images]
    names = list(net.convs)
    behind = {first: errors_behind(net, first, images, probe) for first in range(1, len(names) + 1)}
    layers = {name: behind[i][name] for i, name in enumerate(names, start=1)}
    windows = {f"{names[i - 1]}-{names[i]}": behind[i][names[i]] for i in range(1, len(names))}
    return layers, windows


def rho(pairs: list[tuple[list[float], list[float]]]) -> tuple[list[float], float, float]:
    """(rho per run, pooled rho, pooled p-value) of (scores, accuracies) pairs, pooled as the sweep's tables pool."""
    return [spearman(s, a)[0] for s, a in pairs], *pooled_spearman(pairs)


def main(folder: Path, root: str | None) -> None:
    torch.set_num_threads(1)
    accuracies = window_accuracies(folder)
    if not accuracies:
        raise SystemExit(f"{folder} holds no window-study results: run a sweep with `windows = true` into it first")
    scores = {}
    for run_dir in accuracies:
        layers, windows = run_scores(run_dir, root)
        scores[run_dir] = layers, windows
        print(
            f"{Path(run_dir).name}: layers {', '.join(f'{k} {v:.3f}' for k, v in layers.items())}; "
            f"windows {', '.join(f'{k} {v:.3f}' for k, v in windows.items())}"
        )
    for shot in sorted({s for shots in accuracies.values() for s in shots}):
        for label in ("mean of the layers' scores", "the window's last layer"):
            pairs = []
            for run_dir, shots in accuracies.items():
                if shot in shots:
                    layers, windows = scores[run_dir]
                    blocks = list(shots[shot])
                    if label == "the window's last layer":
                        score = [windows[b] for b in blocks]
                    else:
                        score = [float(np.mean([layers[n] for n in b.split("-")])) for b in blocks]
                    pairs.append((score, [shots[shot][b] for b in blocks]))
            per_run, pooled, p = rho(pairs)
            print(
                f"shot {shot}, {label}: rho per run {', '.join(f'{r:+.2f}' for r in per_run)}; pooled {pooled:+.2f} "
                f"(p {p:.3g})"
            )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__.splitlines()[-1])
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
