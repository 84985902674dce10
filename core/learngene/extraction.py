"""Extracting a learngene: the selected conv + BatchNorm layers of a run's checkpoint, with where they came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.collective.runs import Run
from core.errors import LearngeneError, Setting
from core.learngene.gene import LAYER_KEYS, Learngene
from core.learngene.selection import LayerScores, Selection, check_block, conv_index


def _selected_scores(scores: LayerScores | None, layers: tuple[str, ...]) -> dict[str, Any]:
    if scores is None:
        return {}
    full = scores.as_dict()
    full["layers"] = {n: v for n, v in full["layers"].items() if n in layers}
    return full


def extract(run: Run, selection: Selection, task: int | None = None) -> Learngene:
    """The selected layers of the run's checkpoint after `task` (default: `default_task(run)`)."""
    task = default_task(run) if task is None else task
    if not 0 <= task < run.finished_tasks:
        raise LearngeneError(
            f"task {task} is not a finished task of {run.path}: choose ",
            Setting("task", f"0..{run.finished_tasks - 1}"),
        )
    spec = run.spec(task)
    names = spec.layer_names()
    check_block(names, selection.layers)
    net = run.load_net(task)
    tensors: dict[str, torch.Tensor] = {}
    for name in selection.layers:
        state = net.convs[name].state_dict()
        missing = [k for k in LAYER_KEYS if k not in state]
        if missing:
            raise LearngeneError(
                f"{name} of {run.path} lacks {', '.join(missing)}: only conv + BatchNorm blocks can be extracted"
            )
        tensors.update({f"{name}.{k}": state[k].detach().clone() for k in LAYER_KEYS})
    first = conv_index(selection.layers[0])
    pools_before = sum(1 for p in spec.pool_after if p < first)
    size = spec.image_size
    for _ in range(pools_before):
        size //= 2
    block = {conv_index(n) for n in selection.layers}
    return Learngene(
        layers=tuple(selection.layers),
        tensors=tensors,
        in_channels=int(tensors[f"{selection.layers[0]}.conv.weight"].shape[1]),
        input_size=size,
        pools=tuple(f"conv{p}" for p in sorted(spec.pool_after) if p in block),
        image_channels=spec.in_channels,
        image_size=spec.image_size,
        dataset=run.config.dataset,
        run=str(Path(run.path).resolve()),
        task=task,
        selection={k: v for k, v in selection.as_dict().items() if k != "scores"},
        scores=_selected_scores(selection.scores, tuple(selection.layers)),
        network=spec,
    )


def default_task(run: Run) -> int:
    """The default checkpoint of a learngene: extract_after_task (None: the last task), at most the last finished."""
    after = run.config.extract_after_task
    return run.last_task if after is None else min(after, run.last_task)
