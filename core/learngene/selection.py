"""Learngene selection (spec section 4): per-layer stability scores from the criterion, and three rules for a block.

A learngene is a contiguous block of conv layers: deep (the paper's), in the middle, or starting at the input layer
conv1 (front inheritance); fc layers are the head and never candidates. Every rule ends in `check_block`, whose error
names the nearest valid block.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.collective.criterion import CriterionLog, relative_matrix
from core.collective.runs import Run
from core.collective.transfer_runs import run_errors
from core.errors import LearngeneError, Setting

AGGREGATIONS = ("mean", "median", "max")
_CONV = re.compile(r"conv(\d+)$")


def conv_index(name: str) -> int | None:
    """The 1-based index of a conv layer name ("conv7" -> 7), None for anything else."""
    match = _CONV.match(name)
    return int(match.group(1)) if match else None


def conv_layers(layer_names: Sequence[str]) -> tuple[str, ...]:
    """The conv layers among a network's layer names, in network order."""
    return tuple(n for n in layer_names if conv_index(n) is not None)


def candidates(layer_names: Sequence[str]) -> tuple[str, ...]:
    """The layers a learngene may contain: every conv layer."""
    return conv_layers(layer_names)


def block_label(layers: Sequence[str]) -> str:
    """ "conv4-conv6" for a block, "conv4" for one layer, "conv3, conv5" for anything else, "none" when empty."""
    layers = tuple(layers)
    if not layers:
        return "none"
    if len(layers) == 1:
        return layers[0]
    idx = [conv_index(n) for n in layers]
    if None not in idx and idx == list(range(idx[0], idx[0] + len(idx))):
        return f"{layers[0]}-{layers[-1]}"
    return ", ".join(layers)


@dataclass(frozen=True, eq=False)
class LayerScores:
    """Per-layer score (aggregate over the scored tasks; lower = more stable) and spread (std over those tasks)."""

    layer_names: tuple[str, ...]
    score: np.ndarray
    spread: np.ndarray
    tasks: tuple[int, ...]
    tau: float
    absolute: bool
    aggregation: str
    criterion: str = "paper"

    def of(self, name: str) -> tuple[float, float]:
        """(score, spread) of one layer."""
        i = self.layer_names.index(name)
        return float(self.score[i]), float(self.spread[i])

    def as_dict(self) -> dict:
        """JSON-ready form (NaN as None)."""
        return {
            "criterion": self.criterion,
            "tau": self.tau,
            "absolute": self.absolute,
            "aggregation": self.aggregation,
            "tasks": list(self.tasks),
            "layers": {
                n: {"score": _finite(self.score[i]), "spread": _finite(self.spread[i])}
                for i, n in enumerate(self.layer_names)
            },
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def layer_scores(
    log: CriterionLog,
    *,
    expansion_tasks: int,
    tau: float | None = None,
    absolute: bool = False,
    aggregation: str = "mean",
) -> LayerScores:
    """Scores over the tasks after expansion (index >= expansion_tasks; all tasks when there are none yet)."""
    matrix = log.per_task(tau, absolute=absolute)
    return scores_of_matrix(
        matrix,
        log.layer_names,
        expansion_tasks=expansion_tasks,
        tau=log.tau if tau is None else float(tau),
        absolute=absolute,
        aggregation=aggregation,
    )


def scores_of_matrix(
    matrix: np.ndarray,
    layer_names: Sequence[str],
    *,
    expansion_tasks: int,
    tau: float,
    absolute: bool = False,
    aggregation: str = "mean",
    criterion: str = "paper",
) -> LayerScores:
    """Scores of a (tasks, layers) criterion matrix already computed at `tau` (see layer_scores)."""
    if aggregation not in AGGREGATIONS:
        raise LearngeneError(f"unknown aggregation {aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
    tasks = [t for t in range(matrix.shape[0]) if t >= expansion_tasks and np.isfinite(matrix[t]).any()]
    if not tasks:
        tasks = [t for t in range(matrix.shape[0]) if np.isfinite(matrix[t]).any()]
    if not tasks and matrix.shape[0] == 0:
        raise LearngeneError("the criterion holds no finished task yet: train at least one source task first")
    if not tasks:
        raise LearngeneError(
            f"the criterion of {matrix.shape[0]} tasks holds no number at all (every value is NaN): the run's "
            "criterion.npz is damaged; restore it from a backup or train the run again"
        )
    rows = matrix[tasks]
    reduce = {"mean": np.nanmean, "median": np.nanmedian, "max": np.nanmax}[aggregation]
    with warnings.catch_warnings():  # an all-NaN layer (never recorded) scores NaN, which is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        score = reduce(rows, axis=0)
        spread = np.nanstd(rows, axis=0)
    return LayerScores(tuple(layer_names), score, spread, tuple(tasks), float(tau), absolute, aggregation, criterion)


@dataclass(frozen=True, eq=False)
class Selection:
    """A valid learngene: contiguous conv layers, and how they were chosen."""

    layers: tuple[str, ...]
    rule: str = "explicit"
    parameter: float | int | str | None = None
    scores: LayerScores | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """ "conv4-conv6"."""
        return block_label(self.layers)

    def as_dict(self) -> dict:
        """JSON-ready form, with the scores of the selected layers."""
        out: dict = {"layers": list(self.layers), "label": self.label, "rule": self.rule, "parameter": self.parameter}
        if self.scores is not None:
            out["scores"] = self.scores.as_dict()
        return out


def nearest_block(layer_names_all: Sequence[str], selected: Sequence[str]) -> tuple[str, ...]:
    """The valid block closest to a selection: its span over the conv layers, non-conv layers dropped.

    With nothing usable left it is the deepest conv layer; () when the network has no conv layer at all.
    """
    cands = candidates(layer_names_all)
    if not cands:
        return ()
    index = {n: conv_index(n) for n in cands}
    picked = sorted(index[n] for n in selected if n in index)
    if not picked:
        return (cands[-1],)
    return tuple(n for n in cands if picked[0] <= index[n] <= picked[-1])


def validate_block(layer_names_all: Sequence[str], selected: Sequence[str]) -> tuple[bool, str, tuple[str, ...]]:
    """(ok, message, nearest valid block) for a selection, without raising; message is "" when ok."""
    selected = tuple(selected)
    names = tuple(layer_names_all)
    nearest = nearest_block(names, selected)
    hint = f": the nearest valid block is {block_label(nearest)}" if nearest else ": this network has no conv layer"
    if not selected:
        return False, "no layer is selected" + hint, nearest
    unknown = [n for n in selected if n not in names]
    if unknown:
        return (
            False,
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a layer of this network (conv layers: "
            f"{block_label(conv_layers(names))})" + hint,
            nearest,
        )
    heads = [n for n in selected if conv_index(n) is None]
    if heads:
        return (
            False,
            f"{', '.join(heads)} {'is a head layer' if len(heads) == 1 else 'are head layers'}, only conv layers can "
            "be inherited" + hint,
            nearest,
        )
    if len(set(selected)) != len(selected):
        return False, f"{block_label(selected)} names a layer twice" + hint, nearest
    ordered = tuple(sorted(selected, key=conv_index))
    idx = [conv_index(n) for n in ordered]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        return False, f"{block_label(ordered)} are not contiguous" + hint, nearest
    return True, "", ordered


def check_block(
    layer_names_all: Sequence[str],
    selected: Sequence[str],
    *,
    rule: str = "explicit",
    parameter: float | int | str | None = None,
    scores: LayerScores | None = None,
) -> Selection:
    """The selection as a Selection (layers in network order), or LearngeneError naming the nearest valid block."""
    ok, message, block = validate_block(layer_names_all, selected)
    if not ok:
        raise LearngeneError(message)
    return Selection(block, rule, parameter, scores)


def parse_layers(text: str, layer_names_all: Sequence[str]) -> tuple[str, ...]:
    """ "conv4-conv6" or "conv4,conv5,conv6" (spaces allowed) -> layer names; a range uses the network's conv order."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise LearngeneError(
            Setting("layers", repr(text)), " names no layer: write e.g. conv4-conv6 or conv4,conv5,conv6"
        )
    convs = conv_layers(layer_names_all)
    out: list[str] = []
    for part in parts:
        if "-" not in part:
            out.append(part)
            continue
        first, _, last = (s.strip() for s in part.partition("-"))
        a, b = conv_index(first), conv_index(last)
        if a is None or b is None or a > b:
            raise LearngeneError(f"{part!r} is not a range of conv layers: write it low to high, e.g. conv4-conv6")
        missing = [n for n in (first, last) if n not in convs]
        if missing:
            raise LearngeneError(
                f"{', '.join(missing)} is not a layer of this network: conv layers are {block_label(convs)}"
            )
        out.extend(n for n in convs if a <= conv_index(n) <= b)
    return tuple(out)


def threshold_layers(scores: LayerScores, threshold: float) -> tuple[str, ...]:
    """The conv layers whose score is at most `threshold`, in network order (not necessarily a valid block)."""
    convs = conv_layers(scores.layer_names)
    return tuple(n for n in convs if np.isfinite(scores.of(n)[0]) and scores.of(n)[0] <= threshold)


def select_threshold(scores: LayerScores, threshold: float) -> Selection:
    """Rule (a): the conv layers whose score is at most `threshold`."""
    picked = threshold_layers(scores, threshold)
    if not picked:
        finite = [(scores.of(n)[0], n) for n in candidates(scores.layer_names) if np.isfinite(scores.of(n)[0])]
        if not finite:
            raise LearngeneError("no conv layer has a score yet: train more source tasks first")
        low, name = min(finite)
        raise LearngeneError(
            f"no conv layer scores at most {threshold:g} (lowest: {name} at {low:.4g}): raise the threshold; "
            f"the nearest valid block is {name}"
        )
    return check_block(scores.layer_names, picked, rule="threshold", parameter=float(threshold), scores=scores)


def front_block(layer_names_all: Sequence[str], block: Sequence[str]) -> tuple[str, ...]:
    """The conv layers before a block: what front inheritance keeps where the paper puts a new random front."""
    convs = conv_layers(layer_names_all)
    return convs[: convs.index(block[0])] if block and block[0] in convs else ()


def windows(layer_names_all: Sequence[str], k: int) -> list[tuple[str, ...]]:
    """Every contiguous block of k conv layers, shallow to deep."""
    cands = candidates(layer_names_all)
    return [cands[i : i + k] for i in range(len(cands) - k + 1)] if k >= 1 else []


def select_top_k(scores: LayerScores, k: int) -> Selection:
    """Rule (b): the window of k contiguous layers with the lowest mean score, ties broken by lower mean spread."""
    n = len(candidates(scores.layer_names))
    if not 1 <= k <= n:
        raise LearngeneError(
            Setting("top_k", str(k)), f" is out of range: this network has {n} conv layers, choose 1..{n}"
        )
    ranked = []
    for block in windows(scores.layer_names, k):
        score = np.mean([scores.of(name)[0] for name in block])
        spread = np.mean([scores.of(name)[1] for name in block])
        ranked.append(
            (
                np.inf if not np.isfinite(score) else score,
                np.inf if not np.isfinite(spread) else spread,
                -conv_index(block[0]),
                block,
            )
        )
    best = min(ranked, key=lambda r: r[:3])
    return check_block(scores.layer_names, best[3], rule="top-k", parameter=int(k), scores=scores)


def select_explicit(layer_names_all: Sequence[str], text: str, scores: LayerScores | None = None) -> Selection:
    """Rule (c): an explicit list or range."""
    return check_block(
        layer_names_all, parse_layers(text, layer_names_all), rule="explicit", parameter=text, scores=scores
    )


def default_top_k(run: Run) -> int:
    """The default window length: 3 (the paper's conv11-conv13) for the paper preset, else 2, at most the candidates."""
    k = 3 if run.config.preset == "paper" else 2
    return max(1, min(k, len(candidates(run.spec().layer_names()))))


CRITERIA = ("paper", "relative", "transfer")
RELATIVE_FACTOR = 1.0  # the relative criterion counts entries above one gradient RMS


def run_scores(
    run: Run,
    *,
    tau: float | None = None,
    absolute: bool = False,
    aggregation: str = "mean",
    criterion: str = "paper",
    root: str | None = None,
) -> LayerScores:
    """Layer scores of a run: the paper's criterion at `tau` (default: the run's), the scale-free relative one, or the
    transfer criterion's open-world error (core.collective.transfer; tau and absolute do not apply; a run that predates
    it is measured from its checkpoints on the data at `root`, default $LEARNGENE_DATA)."""
    log = run.criterion()
    if criterion == "transfer":
        matrix = run_errors(run, root)
        return scores_of_matrix(
            matrix,
            log.layer_names,
            expansion_tasks=run.config.expansion_tasks,
            tau=0.0,
            aggregation=aggregation,
            criterion="transfer",
        )
    if criterion == "paper":
        return layer_scores(
            log, expansion_tasks=run.config.expansion_tasks, tau=tau, absolute=absolute, aggregation=aggregation
        )
    if criterion != "relative":
        raise LearngeneError(f"unknown criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    names = log.layer_names
    sizes = np.array([[run.spec(t).weight_sizes()[n] for n in names] for t in range(log.tasks)], dtype=np.float64)
    matrix = relative_matrix(log, sizes, RELATIVE_FACTOR, absolute=absolute)
    return scores_of_matrix(
        matrix,
        names,
        expansion_tasks=run.config.expansion_tasks,
        tau=RELATIVE_FACTOR,
        absolute=absolute,
        aggregation=aggregation,
        criterion="relative",
    )


def select_for_run(
    run: Run,
    *,
    layers: str | None = None,
    threshold: float | None = None,
    top_k: int | None = None,
    tau: float | None = None,
    absolute: bool = False,
    aggregation: str = "mean",
    criterion: str = "paper",
    root: str | None = None,
) -> Selection:
    """Apply one rule (explicit layers, threshold, or top-k window; default top-k) to a run's criterion."""
    if sum(v is not None for v in (layers, threshold, top_k)) > 1:
        raise LearngeneError(
            "give only one of ", Setting("layers"), ", ", Setting("threshold"), " and ", Setting("top_k")
        )
    scores = run_scores(run, tau=tau, absolute=absolute, aggregation=aggregation, criterion=criterion, root=root)
    if layers is not None:
        return select_explicit(run.spec().layer_names(), layers, scores)
    if threshold is not None:
        return select_threshold(scores, threshold)
    if top_k is None and not candidates(scores.layer_names):
        raise LearngeneError(
            f"the criterion of {run.path} scores no conv layer after conv1, so there is no block to inherit: "
            "check that the run's criterion.npz belongs to its network"
        )
    return select_top_k(scores, default_top_k(run) if top_k is None else top_k)
