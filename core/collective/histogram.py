"""Gradient histograms of the criterion: fixed log-spaced magnitude bins, signed, filled fast on-tensor.

Every batch adds each layer's weight-gradient entries to a histogram over fixed log-spaced magnitude bins,
positive and non-positive entries apart, so the fraction above any other tau can be read off later without
retraining. Bin j of a row holds entries whose magnitude m falls in
    j = 0: m == 0 (exact zeros; stored in the non-positive row)
    j = 1: 0 < m <= BIN_EDGES[0]
    j = 2..61: BIN_EDGES[j-2] < m <= BIN_EDGES[j-1]
    j = 62: m > BIN_EDGES[-1], and +-inf and NaN (so a NaN counts as above every tau, unlike `grad > tau`)
Bins are closed above, so "g > tau" for tau on an edge is exactly "every bin above that edge".
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import LearngeneError

BIN_EDGES: np.ndarray = 10.0 ** np.linspace(-14.0, 1.0, 61)
NBINS = len(BIN_EDGES) + 2
POSITIVE, NEGATIVE = 0, 1
_KEY_BITS = 16
_PIECE = 1 << 16  # entries binned per pass: the pass's scratch stays in cache; small layers share one pass


# ---------------------------------------------------------------- bin layout


@dataclass(frozen=True)
class Layout:
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
def layout(tau: float) -> Layout:
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
    return Layout(
        negative=tuple(e[1] for e in entries),
        magnitude=np.array([abs(k[1]) for k in keys], dtype=np.float64),
        region=np.array(region, dtype=np.int64),
        zero_bin=region.index(NEGATIVE * NBINS),
        pos_tau=keys.index(at_tau[1]),
        neg_tau=keys.index(at_tau[0]),
    )


def _boundaries(layout: Layout, dtype: np.dtype) -> np.ndarray:
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
    bounds = _boundaries(layout(tau), dtype)
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


class Binner:
    """Maps values of one float dtype on one device to internal bin numbers, on-tensor, in reused buffers."""

    def __init__(self, tau: float, dtype: torch.dtype, device: torch.device) -> None:
        base, corr = _lookup(tau, "float32" if dtype == torch.float32 else "float64")
        self.int_dtype = torch.int32 if dtype == torch.float32 else torch.int64
        # bin numbers fit a byte (at most 127 bins), which bincount and the additions read fastest
        self.idx_dtype = torch.uint8 if counts_with_bincount(device) else torch.int32
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

    def count(self, flats: list[torch.Tensor], counts: torch.Tensor) -> None:
        """Add the bin counts of each 1-D tensor to its row of `counts` (int64, one row per tensor)."""
        idx = self.bins(flats)
        parts = idx.split([f.numel() for f in flats]) if len(flats) > 1 else (idx,)
        if counts_with_bincount(self.device):
            counts.add_(torch.stack([torch.bincount(p, minlength=counts.shape[1]) for p in parts]))
        else:
            for row, part in zip(counts, parts):
                row.index_add_(0, part, self.one.expand(part.numel()))

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


def counts_with_bincount(device: torch.device) -> bool:
    """bincount is the fastest counter on CPU; on an accelerator it reads its maximum back to the host every call."""
    return device.type == "cpu"


def flat_gradient(grad: torch.Tensor) -> torch.Tensor:
    """The gradient as a 1-D tensor of float32/float64, without a copy when its memory is dense (any layout)."""
    if grad.dtype not in (torch.float32, torch.float64):
        grad = grad.float()
    if grad.is_contiguous() or (grad.dim() == 4 and grad.is_contiguous(memory_format=torch.channels_last)):
        return grad.as_strided((grad.numel(),), (1,))
    return grad.reshape(-1)


def tails(hist: np.ndarray, absolute: bool) -> np.ndarray:
    """Per histogram, the fraction of entries in bins j and higher, with a 0 appended (shape (..., NBINS + 1)): what
    every tau's fraction is read from, so a caller moving tau over the same histograms computes it once."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim < 2 or hist.shape[-2:] != (2, NBINS):
        raise ValueError(f"histograms must have shape (..., 2, {NBINS}), got {hist.shape}")
    counts = hist[..., POSITIVE, :] + (hist[..., NEGATIVE, :] if absolute else 0.0)
    above = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([above, np.zeros(counts.shape[:-1] + (1,))], axis=-1)


def _position(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, w): tau lies between BIN_EDGES[k] and BIN_EDGES[k + 1], a fraction w of the way in log scale."""
    k = np.clip(np.searchsorted(BIN_EDGES, taus, side="right") - 1, 0, len(BIN_EDGES) - 2)
    w = (np.log(taus) - np.log(BIN_EDGES[k])) / (np.log(BIN_EDGES[k + 1]) - np.log(BIN_EDGES[k]))
    return k, w


def fraction_from_hist(
    hist: np.ndarray, tau: float | np.ndarray, *, absolute: bool, tail: np.ndarray | None = None
) -> np.ndarray:
    """Fraction of entries above tau from histograms (..., 2, NBINS): exact on an edge, log-linear between.

    Between edges e_k < tau < e_{k+1} the fraction above tau is interpolated linearly in log(tau) between its
    exact values at the two edges, i.e. entries are taken as spread evenly in log-magnitude inside a bin; the result
    is continuous and non-increasing in tau. A scalar tau gives shape (...); an array of taus adds its shape at the end.
    `tail`: `tails(hist, absolute)` when the caller already has it.
    """
    tail = tails(hist, absolute) if tail is None else tail
    taus = np.asarray(tau, dtype=np.float64)
    if not np.all((taus >= BIN_EDGES[0]) & (taus <= BIN_EDGES[-1])):
        raise LearngeneError(
            f"tau {tau} is outside the recorded histogram range [{BIN_EDGES[0]:g}, {BIN_EDGES[-1]:g}]: "
            "pick a tau inside it"
        )
    k, w = _position(taus)
    fraction = (1.0 - w) * tail[..., k + 2] + w * tail[..., k + 3]
    return np.clip(fraction, 0.0, 1.0)  # float32 histograms of a log can sum a hair above 1


def fraction_above_each(hist: np.ndarray, taus: np.ndarray, *, absolute: bool) -> np.ndarray:
    """Like fraction_from_hist, with one tau per histogram (`taus` has the histograms' leading shape).

    Taus outside the histogram range are clamped to it; a NaN tau gives NaN.
    """
    tail = tails(hist, absolute)
    taus = np.asarray(taus, dtype=np.float64)
    finite = np.isfinite(taus)
    k, w = _position(np.clip(np.where(finite, taus, 1.0), BIN_EDGES[0], BIN_EDGES[-1]))
    low = np.take_along_axis(tail, (k + 2)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(tail, (k + 3)[..., None], axis=-1)[..., 0]
    return np.where(finite, np.clip((1.0 - w) * low + w * high, 0.0, 1.0), np.nan)
