"""The learngene discovery criterion (spec section 4): per layer, the fraction of weight-gradient entries above tau.

For weight layer l, task t and epoch e over B batches,
r_{l,t,e} = (1/B) sum_b (1/n_l) sum_i 1[g_i > tau] (signed, as in the paper) and the same with |g_i| (absolute).
Gradients are read from `weight.grad` after `loss.backward()`; no hooks. Comparisons happen in the gradient's
dtype, exactly as `grad > tau` does in torch (half-precision gradients are widened to float32 first).

Beside the two fractions at the configured tau, every batch adds to a histogram over fixed log-spaced
magnitude bins, positive and non-positive entries apart, so the fraction for any other tau can be read off later
without retraining. Bin j of a row holds entries whose magnitude m falls in
    j = 0: m == 0 (exact zeros; stored in the non-positive row)
    j = 1: 0 < m <= BIN_EDGES[0]
    j = 2..61: BIN_EDGES[j-2] < m <= BIN_EDGES[j-1]
    j = 62: m > BIN_EDGES[-1], and +-inf and NaN (so a NaN counts as above every tau, unlike `grad > tau`)
Bins are closed above, so "g > tau" for tau on an edge is exactly "every bin above that edge".
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_path
from core.errors import LearngeneError

BIN_EDGES: np.ndarray = 10.0 ** np.linspace(-14.0, 1.0, 61)
NBINS = len(BIN_EDGES) + 2
POSITIVE, NEGATIVE = 0, 1
_FORMAT = 1
_KEY_BITS = 16
_PIECE = 1 << 16  # entries binned per pass: the pass's scratch stays in cache; small layers share one pass


# ---------------------------------------------------------------- bin layout


@dataclass(frozen=True)
class _Layout:
    """Sorted internal boundaries for one tau: the fixed edges on both signs plus tau on both signs.

    Internal bin i holds the entries g with boundary[i-1] < g <= boundary[i] (torch.bucketize order), so the
    count of entries above any boundary is a sum of whole internal bins.
    """

    negative: tuple[bool, ...]  # per boundary: on the negative side (value nextafter(-x, -inf)) or positive (x)
    magnitude: np.ndarray  # per boundary: x
    region: np.ndarray  # per internal bin: flat index row * NBINS + bin of the fixed histogram
    zero_bin: int  # internal bin of exact zeros
    pos_tau: int  # boundary index of +tau: signed count = bins above it
    neg_tau: int  # boundary index of nextafter(-tau): |g| > tau on the negative side = bins at or below it


@functools.lru_cache(maxsize=8)
def _layout(tau: float) -> _Layout:
    """Boundaries in ascending order; tau reuses an edge it equals, else it splits a bin in two."""
    entries = [((0, -x), True, NEGATIVE * NBINS + k + 1) for k, x in enumerate(BIN_EDGES)]
    entries += [((0, -0.0), True, NEGATIVE * NBINS), ((1, 0.0), False, POSITIVE * NBINS + 1)]
    entries += [((1, x), False, POSITIVE * NBINS + k + 2) for k, x in enumerate(BIN_EDGES)]
    at_tau = [(0, -tau), (1, tau)]
    entries += [(key, key[0] == 0, None) for key in at_tau if all(e[0] != key for e in entries)]
    entries.sort(key=lambda e: e[0])
    region = [NEGATIVE * NBINS + NBINS - 1]
    for _, _, label in entries:
        region.append(region[-1] if label is None else label)
    keys = [e[0] for e in entries]
    return _Layout(
        negative=tuple(e[1] for e in entries),
        magnitude=np.array([abs(k[1]) for k in keys], dtype=np.float64),
        region=np.array(region, dtype=np.int64),
        zero_bin=region.index(NEGATIVE * NBINS),
        pos_tau=keys.index(at_tau[1]),
        neg_tau=keys.index(at_tau[0]),
    )


def _boundaries(layout: _Layout, dtype: np.dtype) -> np.ndarray:
    """The boundaries in `dtype`: x on the positive side, the float just below -x on the negative side."""
    x = layout.magnitude.astype(dtype)
    below = np.nextafter(-x, np.array(-np.inf, dtype=dtype))
    return np.where(np.array(layout.negative), below, x)


@functools.lru_cache(maxsize=8)
def _lookup(tau: float, dtype_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Tables that bin a value by the top 16 bits of its float pattern plus one exact compare per nearby boundary.

    For each 16-bit key, `base` counts the boundaries below every value with that key, and `corr[j]` lists the
    boundaries inside the key's value interval (padded with +inf), so bin = base[key] + sum_j (g > corr[j][key]):
    the same integer torch.bucketize gives, at a fraction of its cost (binary search mispredicts on gradients).
    """
    dtype = np.dtype(dtype_name)
    bounds = _boundaries(_layout(tau), dtype)
    uint = np.dtype(f"u{dtype.itemsize}")
    shift = dtype.itemsize * 8 - _KEY_BITS
    keys = np.arange(2**_KEY_BITS, dtype=np.uint64)
    first = (keys << np.uint64(shift)).astype(uint).view(dtype)
    last = ((keys << np.uint64(shift)) | np.uint64(2**shift - 1)).astype(uint).view(dtype)
    sign = keys >= 2 ** (_KEY_BITS - 1)
    infinity = np.where(sign, -np.inf, np.inf)
    with np.errstate(invalid="ignore"):  # the patterns include signalling NaNs; those keys bin as +-inf
        lo = np.where(sign, last, first).astype(np.float64)
        hi = np.where(sign, first, last).astype(np.float64)
    lo, hi = np.where(np.isnan(lo), infinity, lo), np.where(np.isnan(hi), infinity, hi)
    exact = bounds.astype(np.float64)
    base = np.searchsorted(exact, lo, side="left")
    inside = np.searchsorted(exact, hi, side="left") - base
    corr = np.full((int(inside.max()), keys.size), np.inf, dtype=dtype)
    for j in range(corr.shape[0]):
        has = inside > j
        corr[j, has] = bounds[base[has] + j]
    return base.astype(np.int32), corr


class _Binner:
    """Maps values of one float dtype on one device to internal bin numbers, on-tensor, in reused buffers."""

    def __init__(self, tau: float, dtype: torch.dtype, device: torch.device) -> None:
        base, corr = _lookup(tau, "float32" if dtype == torch.float32 else "float64")
        self.int_dtype = torch.int32 if dtype == torch.float32 else torch.int64
        # bin numbers fit a byte (at most 127 bins), which bincount and the additions read fastest
        self.idx_dtype = torch.uint8 if _counts_with_bincount(device) else torch.int32
        self.base = torch.from_numpy(base).to(device, self.idx_dtype)
        # boundaries gathered as same-size integers (faster than gathering floats), compared as floats
        self.corr = torch.from_numpy(corr).to(device).view(self.int_dtype)
        self.shift = dtype.itemsize * 8 - _KEY_BITS
        self.device, self.dtype = device, dtype
        self.piece = _PIECE if device.type == "cpu" else 2**62  # an accelerator prefers fewer, bigger launches
        self.one = torch.ones((), dtype=torch.int64, device=device)
        self._buffers: dict[str, torch.Tensor] = {}

    def scratch(self, name: str, n: int, dtype: torch.dtype) -> torch.Tensor:
        """A reused 1-D buffer of at least n entries, cut to n."""
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < n:
            buf = self._buffers[name] = torch.empty(n, dtype=dtype, device=self.device)
        return buf[:n]

    def bins(self, flats: list[torch.Tensor]) -> torch.Tensor:
        """Internal bin number of every entry of the 1-D tensors, concatenated; valid until the next call."""
        idx = self.scratch("idx", sum(f.numel() for f in flats), self.idx_dtype)
        start = 0
        for piece in _pieces(flats, self.piece):
            m = sum(p.numel() for p in piece)
            values = piece[0] if len(piece) == 1 else torch.cat(piece, out=self.scratch("values", m, self.dtype))
            self._bin(values, idx[start : start + m])
            start += m
        return idx

    def _bin(self, values: torch.Tensor, out: torch.Tensor) -> None:
        n = values.numel()
        key, near = self.scratch("key", n, self.int_dtype), self.scratch("near", n, self.int_dtype)
        above = self.scratch("above", n, torch.bool)
        torch.bitwise_right_shift(values.view(self.int_dtype), self.shift, out=key)
        key.bitwise_and_(2**_KEY_BITS - 1)
        torch.index_select(self.base, 0, key, out=out)
        for corr in self.corr:
            torch.index_select(corr, 0, key, out=near)
            torch.gt(values, near.view(self.dtype), out=above)
            out.add_(above)


def _pieces(flats: list[torch.Tensor], limit: int) -> Iterator[list[torch.Tensor]]:
    """Cut the tensors, in order, into pieces of at most `limit` entries: slices of big ones, groups of small ones."""
    group: list[torch.Tensor] = []
    size = 0
    for flat in flats:
        if group and size + flat.numel() > limit:
            yield group
            group, size = [], 0
        if flat.numel() > limit:
            yield from ([flat[i : i + limit]] for i in range(0, flat.numel(), limit))
        else:
            group.append(flat)
            size += flat.numel()
    if group:
        yield group


def _counts_with_bincount(device: torch.device) -> bool:
    """bincount is the fastest counter on CPU; on an accelerator it reads its maximum back to the host every call."""
    return device.type == "cpu"


def _flat(grad: torch.Tensor) -> torch.Tensor:
    """The gradient as a 1-D tensor of float32/float64, without a copy when its memory is dense (any layout)."""
    if grad.dtype not in (torch.float32, torch.float64):
        grad = grad.float()
    if grad.is_contiguous() or (grad.dim() == 4 and grad.is_contiguous(memory_format=torch.channels_last)):
        return grad.as_strided((grad.numel(),), (1,))
    return grad.reshape(-1)


# ---------------------------------------------------------------- one epoch


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
            raise LearngeneError(f"tau must be a finite number >= 0, got {tau}: pass e.g. --tau 5e-10")
        for name, module in layers.items():
            if not isinstance(getattr(module, "weight", None), torch.Tensor):
                raise LearngeneError(
                    f"layer {name!r} ({type(module).__name__}) has no weight tensor: pass only conv and linear layers"
                )
        self.layer_names = tuple(layers)
        self.tau = tau
        self._modules = tuple(layers.values())
        self._layout = _layout(tau)
        self._binners: dict[tuple[torch.dtype, torch.device], _Binner] = {}
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
            flat = None if weight.grad is None else _flat(weight.grad)
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
            binner = self._binners[(flats[0].dtype, device)] = _Binner(self.tau, flats[0].dtype, device)
        if device not in self._sums:
            shape = (len(self._modules), len(self._layout.region))
            self._sums[device] = (
                torch.zeros(shape, dtype=torch.int64, device=device),
                torch.zeros(shape[0], dtype=torch.float64, device=device),
            )
        counts, norms = (s[first : first + len(flats)] for s in self._sums[device])
        idx = binner.bins(flats)
        parts = idx.split([f.numel() for f in flats]) if len(flats) > 1 else (idx,)
        if _counts_with_bincount(device):
            counts.add_(torch.stack([torch.bincount(p, minlength=counts.shape[1]) for p in parts]))
        else:
            for row, part in zip(counts, parts):
                row.index_add_(0, part, binner.one.expand(part.numel()))
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


def fraction_from_hist(hist: np.ndarray, tau: float | np.ndarray, *, absolute: bool) -> np.ndarray:
    """Fraction of entries above tau from histograms (..., 2, NBINS): exact on an edge, log-linear between.

    Between edges e_k < tau < e_{k+1} the fraction above tau is interpolated linearly in log(tau) between its
    exact values at the two edges, i.e. entries are taken as spread evenly in log-magnitude inside a bin; the result
    is continuous and non-increasing in tau. A scalar tau gives shape (...); an array of taus adds its shape at the end.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim < 2 or hist.shape[-2:] != (2, NBINS):
        raise ValueError(f"histograms must have shape (..., 2, {NBINS}), got {hist.shape}")
    taus = np.asarray(tau, dtype=np.float64)
    if not np.all((taus >= BIN_EDGES[0]) & (taus <= BIN_EDGES[-1])):
        raise LearngeneError(
            f"tau {tau} is outside the recorded histogram range [{BIN_EDGES[0]:g}, {BIN_EDGES[-1]:g}]: "
            "pick a tau inside it"
        )
    counts = hist[..., POSITIVE, :] + (hist[..., NEGATIVE, :] if absolute else 0.0)
    above = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1]  # above[..., j]: fraction in bins j and higher
    tail = np.concatenate([above, np.zeros(counts.shape[:-1] + (1,))], axis=-1)
    k = np.clip(np.searchsorted(BIN_EDGES, taus, side="right") - 1, 0, len(BIN_EDGES) - 2)
    w = (np.log(taus) - np.log(BIN_EDGES[k])) / (np.log(BIN_EDGES[k + 1]) - np.log(BIN_EDGES[k]))
    fraction = (1.0 - w) * tail[..., k + 2] + w * tail[..., k + 3]
    return np.clip(fraction, 0.0, 1.0)  # float32 histograms of a log can sum a hair above 1


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

    def per_epoch(self, tau: float | None = None, *, absolute: bool = False) -> np.ndarray:
        """(T, E, L) fractions: the recorded tau exactly when tau is None, else read from the histograms."""
        if tau is None:
            values = (self.absolute if absolute else self.signed).copy()
        else:
            values = fraction_from_hist(self.hist, tau, absolute=absolute)
        values[~self.recorded] = np.nan
        return values

    def per_task(self, tau: float | None = None, *, absolute: bool = False) -> np.ndarray:
        """(T, L) R_{l,t}: the mean over a task's recorded epochs (NaN for a task with none), as the spec recommends.

        An array of taus adds its shape at the end, as in per_epoch.
        """
        per_epoch = self.per_epoch(tau, absolute=absolute)
        extra = (1,) * (per_epoch.ndim - 2)
        values = np.where(self.recorded.reshape(self.recorded.shape + extra), per_epoch, 0.0)
        n = self.recorded.sum(axis=1).reshape((-1,) + extra)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, values.sum(axis=1) / n, np.nan)

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
    def load(cls, path: str | Path) -> CriterionLog:
        """Read a log written by save(); a truncated, corrupt or inconsistent file is a LearngeneError naming it."""
        fix = "delete it and train the run again (or restore it from a backup)"
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {key: data[key] for key in ("format", "bin_edges", "layer_names", "tau", "epochs") + _ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
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
