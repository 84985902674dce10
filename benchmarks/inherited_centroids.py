"""Front inheritance and the learngene against nearest centroids on the features each inherits, from a sweep's folder.

For every front-inheritance row of the folder's results.csv (a spec with `baselines = true`), the same job's target
tasks are drawn again and classified by nearest centroids (cosine; Snell et al., "Prototypical Networks for Few-shot
Learning", NeurIPS 2017) on each conv layer's globally average-pooled ReLU output of the collective model, with no
training. The inherited block's last layer is what front inheritance starts from; the full features reproduce the
sweep's own nearest-centroid row, which checks that the target tasks are the sweep's. The learngene inherits its block
behind a new random front, so its reference is the individual model as each target task's training starts it (the
same seed, the block inherited, no training) with its BatchNorm statistics fitted to the task's support images: nearest
centroids on the block's pooled output. Prints each run's accuracies and each strategy minus nearest centroids on what
it inherits, paired by seed, per shot count. Run it right after the sweep: a later sweep into the same folder
rewrites results.csv.
Usage: python benchmarks/inherited_centroids.py SWEEP_FOLDER [DATA_ROOT]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from core.batchnorm import recalibrate_batchnorm
from core.collective.runs import open_run
from core.individual.config import IndividualConfig
from core.individual.evaluation import plan_few_shot
from core.individual.model import build_individual, fitted_spec
from core.individual.targets import TargetTask
from core.individual.training import layout
from core.learngene.extraction import extract
from core.learngene.selection import select_for_run


def centroid_accuracy(support: torch.Tensor, labels: torch.Tensor, query: torch.Tensor, truth: torch.Tensor) -> float:
    """Query accuracy of the cosine prototype classifier built from the support features."""
    centroids = torch.stack([support[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
    scores = F.normalize(query, dim=1) @ F.normalize(centroids, dim=1).T
    return float((scores.argmax(1) == truth).float().mean())


def per_layer(net: torch.nn.Module, task: TargetTask) -> dict[str, float]:
    """Nearest-centroid accuracy on each conv layer's pooled output, and on the full features under "features"."""
    support_maps, query_maps = {}, {}
    with torch.no_grad():
        support, query = net.features(task.support, support_maps), net.features(task.query, query_maps)
    out = {"features": centroid_accuracy(support, task.support_labels, query, task.query_labels)}
    for name, maps in support_maps.items():
        pooled = maps.mean((2, 3)), query_maps[name].mean((2, 3))
        out[name] = centroid_accuracy(pooled[0], task.support_labels, pooled[1], task.query_labels)
    return out


def as_inherited(gene, config: IndividualConfig, task: TargetTask, way: int) -> float:  # noqa: ANN001 - a Learngene
    """Nearest-centroid accuracy on the inherited block's pooled output in the individual model as training starts it,
    its BatchNorm statistics fitted to the support images."""
    model = build_individual(fitted_spec(gene, way, config), task.seed, gene)
    recalibrate_batchnorm(model, task.support, lambda x: layout(x, config))

    def pooled(x: torch.Tensor) -> torch.Tensor:
        return model.run_block(model.front_features(layout(x, config))).mean((2, 3))

    with torch.no_grad():
        return centroid_accuracy(pooled(task.support), task.support_labels, pooled(task.query), task.query_labels)


def main(folder: Path, root: str | None) -> None:
    """Print each front row beside nearest centroids on every layer, then the paired difference on its block."""
    with open(folder / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    gains: dict[tuple[str, str], list[float]] = {}
    for front in (r for r in rows if r["method"].startswith("front ") and not r.get("size")):
        job = json.loads((folder / "results" / f"{front['fewshot_key']}.json").read_text())
        setup = job["setup"]
        config = IndividualConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in setup["config"].items()})
        run = open_run(folder / "runs" / front["collective_key"])
        gene = extract(run, select_for_run(run))
        plan = plan_few_shot(
            run,
            gene,
            config,
            way=setup["way"],
            shot=setup["shot"],
            tasks=setup["tasks"],
            query=setup["query"],
            root=root,
        )
        net = run.load_net(gene.task).eval()
        scores = [per_layer(net, task) for task in plan.targets.tasks]
        means = {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
        block_end = front["layers"].split("-")[-1]
        own = [r for r in rows if r["fewshot_key"] == front["fewshot_key"] and r["method"] == "nearest-centroid"]
        check = f" (the sweep's row {float(own[0]['mean_accuracy']):.3f})" if own else ""
        print(
            f"seed {front['seed']}, {front['shot']} shot: {front['method']} {float(front['mean_accuracy']):.3f}; "
            f"nearest centroids on the full features {means.pop('features'):.3f}{check}; "
            + ", ".join(f"{name} {value:.3f}" for name, value in means.items()),
            flush=True,
        )
        gains.setdefault(("front inheritance", front["shot"]), []).append(
            float(front["mean_accuracy"]) - means[block_end]
        )
        learngene = next(r for r in rows if r["fewshot_key"] == front["fewshot_key"] and r["method"] == "learngene")
        inherited = float(np.mean([as_inherited(gene, plan.config, task, setup["way"]) for task in plan.targets.tasks]))
        print(
            f"  learngene {learngene['layers']} {float(learngene['mean_accuracy']):.3f}; nearest centroids on its "
            f"block behind the new random front {inherited:.3f}",
            flush=True,
        )
        gains.setdefault(("learngene", front["shot"]), []).append(float(learngene["mean_accuracy"]) - inherited)
    for (strategy, shot), paired in gains.items():
        if len(paired) > 1:
            half = stats.t.ppf(0.975, len(paired) - 1) * stats.sem(paired)
            print(
                f"{shot} shot: {strategy} minus nearest centroids on the features it inherits: "
                f"{100 * np.mean(paired):+.1f} ± {100 * half:.1f} points over {len(paired)} runs "
                f"(from {100 * min(paired):+.1f} to {100 * max(paired):+.1f})"
            )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__.splitlines()[-1])
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
