"""The learngene discovery criterion (spec section 4): per layer, the fraction of weight-gradient entries above tau.

For weight layer l, task t and epoch e over B batches,
r_{l,t,e} = (1/B) sum_b (1/n_l) sum_i 1[g_i > tau] (signed, as in the paper) and the same with |g_i| (absolute).
Gradients are read from `weight.grad` after `loss.backward()`; no hooks. Comparisons happen in the gradient's
dtype, exactly as `grad > tau` does in torch (half-precision gradients are widened to float32 first). Beside the
two fractions at the configured tau, every batch fills the histograms of `core.collective.histogram`, so any
other tau is read off later without retraining. A task's value R_{l,t} is the mean over its epochs.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_path
from core.collective.histogram import (
    BIN_EDGES,
    NBINS,
    Binner,
    flat_gradient,
    fraction_above_each,
    fraction_from_hist,
    layout,
)
from core.errors import LearngeneError, Setting

_FORMAT = 1


@dataclass(frozen=True, eq=False)
class EpochCriterion:
    """The criterion of one epoch: per-batch means over its layers (order of `layer_names`)."""

    layer_names: tuple[str, ...]
    signed: np.ndarray  # (L,) fraction of g > tau
    absolute: np.ndarray  # (L,) fraction of |g| > tau
    hist: np.ndarray  # (L, 2, NBINS) float64 fraction of entries per bin; row 0 positive, row 1 the rest
    grad_norm: np.ndarray  # (L,) mean L2 norm of the weight gradient
    batches: int


class EpochRecorder:
    """Accumulates, batch by batch, the counts behind one epoch's criterion; the work stays on the gradients' device.

    A layer whose weight has no gradient at a batch (`grad is None`: unused or frozen) counts as an all-zero
    gradient there: its entries go to the zero bin, so it adds 0 to both fractions and to the norm.
    """

    def __init__(self, layers: Mapping[str, nn.Module], tau: float) -> None:
        tau = float(tau)
        if not np.isfinite(tau) or tau < 0:
            raise LearngeneError(f"tau must be a finite number >= 0, got {tau}: pass e.g. ", Setting("tau", "5e-10"))
        for name, module in layers.items():
            if not isinstance(getattr(module, "weight", None), torch.Tensor):
                raise LearngeneError(
                    f"layer {name!r} ({type(module).__name__}) has no weight tensor: pass only conv and linear layers"
                )
        self.layer_names = tuple(layers)
        self.tau = tau
        self._modules = tuple(layers.values())
        self._layout = layout(tau)
        self._binners: dict[tuple[torch.dtype, torch.device], Binner] = {}
        self._sums: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._numel = [m.weight.numel() for m in self._modules]
        self._missing = [0] * len(self._modules)
        self.batches = 0

    def observe(self) -> None:
        """Count every layer's current weight gradient; call once per batch, after loss.backward()."""
        run: list[torch.Tensor] = []  # consecutive layers with gradients of one dtype and device
        first = 0
        for i, module in enumerate(self._modules):
            weight = module.weight
            if weight.numel() != self._numel[i]:
                raise LearngeneError(
                    f"layer {self.layer_names[i]!r} changed size within an epoch: "
                    "start a new EpochRecorder after widening"
                )
            flat = None if weight.grad is None else flat_gradient(weight.grad)
            if run and (flat is None or (flat.dtype, flat.device) != (run[0].dtype, run[0].device)):
                self._count(first, run)
                run = []
            if flat is None:
                self._missing[i] += 1
                continue
            if not run:
                first = i
            run.append(flat)
        if run:
            self._count(first, run)
        self.batches += 1

    def _count(self, first: int, flats: list[torch.Tensor]) -> None:
        """Add the bin counts and gradient norms of layers first, first+1, ..."""
        device = flats[0].device
        binner = self._binners.get((flats[0].dtype, device))
        if binner is None:
            binner = self._binners[(flats[0].dtype, device)] = Binner(self.tau, flats[0].dtype, device)
        if device not in self._sums:
            shape = (len(self._modules), len(self._layout.region))
            self._sums[device] = (
                torch.zeros(shape, dtype=torch.int64, device=device),
                torch.zeros(shape[0], dtype=torch.float64, device=device),
            )
        counts, norms = (s[first : first + len(flats)] for s in self._sums[device])
        binner.count(flats, counts)
        norms.add_(torch.stack([torch.linalg.vector_norm(f) for f in flats]))

    def result(self) -> EpochCriterion:
        """Turn the sums into per-batch-mean fractions (one device-to-host copy)."""
        if self.batches == 0:
            raise LearngeneError("no batch was observed in this epoch: call observe() after every loss.backward()")
        n_layers, n_bins = len(self._modules), len(self._layout.region)
        sums = np.zeros((n_layers, n_bins + 1))
        if self._sums:
            per_device = [torch.cat([c.to(torch.float64), s[:, None]], dim=1) for c, s in self._sums.values()]
            joined = per_device[0]
            for other in per_device[1:]:
                joined = joined + other.to(joined.device)
            sums = joined.cpu().numpy()
        counts, norms = sums[:, :n_bins].copy(), sums[:, n_bins]
        numel = np.array(self._numel, dtype=np.float64).reshape(n_layers)
        counts[:, self._layout.zero_bin] += np.array(self._missing, dtype=np.float64) * numel
        total = self.batches * numel
        signed = counts[:, self._layout.pos_tau + 1 :].sum(axis=1)
        absolute = signed + counts[:, : self._layout.neg_tau + 1].sum(axis=1)
        hist = np.zeros((n_layers, 2 * NBINS))
        np.add.at(hist, (slice(None), self._layout.region), counts)
        return EpochCriterion(
            layer_names=self.layer_names,
            signed=signed / total,
            absolute=absolute / total,
            hist=(hist / total[:, None]).reshape(n_layers, 2, NBINS),
            grad_norm=norms / self.batches,
            batches=self.batches,
        )


# ---------------------------------------------------------------- a whole run


_ARRAYS = ("signed", "absolute", "hist", "grad_norm", "recorded")


@dataclass(eq=False)
class CriterionLog:
    """Everything the criterion recorded in a run, task by task: arrays indexed [task, epoch, layer]."""

    layer_names: tuple[str, ...]
    tau: float
    epochs: int
    signed: np.ndarray  # (T, E, L), NaN where not recorded
    absolute: np.ndarray  # (T, E, L)
    hist: np.ndarray  # (T, E, L, 2, NBINS) float32
    grad_norm: np.ndarray  # (T, E, L)
    recorded: np.ndarray  # (T, E) bool

    @classmethod
    def empty(cls, layer_names: tuple[str, ...], tau: float, epochs: int, tasks: int = 0) -> CriterionLog:
        """A log with `tasks` unrecorded tasks."""
        if epochs < 1 or tasks < 0:
            raise ValueError(f"need epochs >= 1 and tasks >= 0, got epochs={epochs}, tasks={tasks}")
        names = tuple(layer_names)
        shape = (tasks, epochs, len(names))
        return cls(
            layer_names=names,
            tau=float(tau),
            epochs=int(epochs),
            signed=np.full(shape, np.nan),
            absolute=np.full(shape, np.nan),
            hist=np.full(shape + (2, NBINS), np.nan, dtype=np.float32),
            grad_norm=np.full(shape, np.nan),
            recorded=np.zeros(shape[:2], dtype=bool),
        )

    @property
    def tasks(self) -> int:
        """Number of task rows (recorded or not)."""
        return self.recorded.shape[0]

    def record(self, task: int, epoch: int, ec: EpochCriterion) -> None:
        """Store one epoch's criterion, adding task rows as needed."""
        if ec.layer_names != self.layer_names:
            raise ValueError(f"epoch criterion has layers {ec.layer_names}, the log has {self.layer_names}")
        if not 0 <= epoch < self.epochs or task < 0:
            raise ValueError(f"task {task}, epoch {epoch} is outside a log of {self.epochs} epochs per task")
        if task >= self.tasks:
            grown = CriterionLog.empty(self.layer_names, self.tau, self.epochs, task + 1 - self.tasks)
            for name in _ARRAYS:
                setattr(self, name, np.concatenate([getattr(self, name), getattr(grown, name)]))
        self.signed[task, epoch] = ec.signed
        self.absolute[task, epoch] = ec.absolute
        self.hist[task, epoch] = ec.hist
        self.grad_norm[task, epoch] = ec.grad_norm
        self.recorded[task, epoch] = True

    def truncate(self, tasks: int) -> None:
        """Keep only the first `tasks` tasks (a resumed run drops what the manifest did not commit)."""
        for name in _ARRAYS:
            setattr(self, name, getattr(self, name)[:tasks].copy())

    def is_recorded_tau(self, tau: float | None) -> bool:
        """Whether `tau` means the run's own tau (None, or equal to it), whose exact fractions are stored."""
        return tau is None or math.isclose(float(tau), self.tau, rel_tol=1e-9)

    def per_epoch(
        self, tau: float | np.ndarray | None = None, *, absolute: bool = False, tail: np.ndarray | None = None
    ) -> np.ndarray:
        """(T, E, L) fractions: exact at the run's own tau (None or equal to it), else read from the histograms.

        An array of taus adds its shape at the end (always from the histograms). `tail`: `tails(self.hist, absolute)`
        when the caller keeps it while tau moves.
        """
        if np.ndim(tau) == 0 and self.is_recorded_tau(tau):
            values = (self.absolute if absolute else self.signed).copy()
        else:
            values = fraction_from_hist(self.hist, tau, absolute=absolute, tail=tail)
        values[~self.recorded] = np.nan
        return values

    def task_means(self, per_epoch: np.ndarray) -> np.ndarray:
        """(T, L[, ...]) R_{l,t} from per-epoch values: the mean over a task's recorded epochs (NaN for none)."""
        extra = (1,) * (per_epoch.ndim - 2)
        values = np.where(self.recorded.reshape(self.recorded.shape + extra), per_epoch, 0.0)
        n = self.recorded.sum(axis=1).reshape((-1,) + extra)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, values.sum(axis=1) / n, np.nan)

    def per_task(self, tau: float | np.ndarray | None = None, *, absolute: bool = False) -> np.ndarray:
        """(T, L) R_{l,t}: the mean over a task's recorded epochs, as the spec recommends (see per_epoch for tau)."""
        return self.task_means(self.per_epoch(tau, absolute=absolute))

    def save(self, path: str | Path) -> None:
        """Write an uncompressed .npz atomically; names as a unicode array, nothing pickled."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                format=np.int64(_FORMAT),
                bin_edges=BIN_EDGES,
                layer_names=np.array(self.layer_names, dtype=np.str_).reshape(len(self.layer_names)),
                tau=np.float64(self.tau),
                epochs=np.int64(self.epochs),
                **{name: getattr(self, name) for name in _ARRAYS},
            )

    @classmethod
    def load(cls, path: str | Path, content: bytes | None = None) -> CriterionLog:
        """Read a log written by save() (or its bytes `content`); a damaged file is a LearngeneError naming it."""
        fix = "delete it and train the run again (or restore it from a backup)"
        try:
            with np.load(path if content is None else io.BytesIO(content), allow_pickle=False) as data:
                raw = {key: data[key] for key in ("format", "bin_edges", "layer_names", "tau", "epochs") + _ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LearngeneError(f"criterion log {path} is unreadable ({reason}): {fix}") from None
        problem = _inconsistency(raw)
        if problem:
            raise LearngeneError(f"criterion log {path} is not a valid criterion log ({problem}): {fix}")
        return cls(
            layer_names=tuple(str(n) for n in raw["layer_names"]),
            tau=float(raw["tau"]),
            epochs=int(raw["epochs"]),
            signed=raw["signed"].astype(np.float64),
            absolute=raw["absolute"].astype(np.float64),
            hist=raw["hist"].astype(np.float32),
            grad_norm=raw["grad_norm"].astype(np.float64),
            recorded=raw["recorded"],
        )


def _inconsistency(raw: dict[str, np.ndarray]) -> str | None:
    """What does not fit together in a loaded log, or None."""
    scalars = {"format": "iu", "tau": "f", "epochs": "iu"}
    if any(raw[k].shape != () or raw[k].dtype.kind not in kinds for k, kinds in scalars.items()):
        return "format, tau or epochs is not a single number"
    if not (math.isfinite(float(raw["tau"])) and float(raw["tau"]) >= 0):
        return f"tau is {float(raw['tau'])}, not a number >= 0"
    if int(raw["format"]) != _FORMAT:
        return f"format {int(raw['format'])} is not {_FORMAT}"
    if raw["bin_edges"].shape != BIN_EDGES.shape or not np.array_equal(raw["bin_edges"], BIN_EDGES):
        return "its histogram bins differ from this version's"
    names = raw["layer_names"]
    if names.ndim != 1 or (names.size and names.dtype.kind != "U"):
        return "layer names are not a list of strings"
    if int(raw["epochs"]) < 1:
        return f"epochs is {int(raw['epochs'])}"
    recorded = raw["recorded"]
    if recorded.dtype != np.bool_ or recorded.ndim != 2 or recorded.shape[1] != int(raw["epochs"]):
        return f"recorded has shape {recorded.shape}, expected (tasks, {int(raw['epochs'])})"
    expected = recorded.shape + (names.size,)
    shapes = {"signed": expected, "absolute": expected, "grad_norm": expected, "hist": expected + (2, NBINS)}
    for name, shape in shapes.items():
        if raw[name].shape != shape or raw[name].dtype.kind != "f":
            return f"{name} has shape {raw[name].shape} {raw[name].dtype}, expected {shape} floats"
    return None


def relative_matrix(log: CriterionLog, weight_sizes: np.ndarray, factor: float, *, absolute: bool) -> np.ndarray:
    """(T, L) per-task fractions of weight-gradient entries above `factor` times the layer's gradient RMS.

    A scale-free variant of the paper's criterion: tau follows each layer's own gradient scale (RMS = mean gradient
    norm / sqrt(entries), per epoch), so layers of different fan-in compare fairly. `weight_sizes` is (T, L).
    """
    rms = log.grad_norm / np.sqrt(weight_sizes[:, None, :])
    per_epoch = fraction_above_each(log.hist, factor * rms, absolute=absolute)
    per_epoch[~log.recorded] = np.nan
    return log.task_means(per_epoch)
