"""Statistics over target tasks, from scipy.stats: t intervals, paired differences, rank correlation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width t_{0.975, M-1} * sd / sqrt(M) of its 95% CI; NaN half-width for M < 2."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if values.size == 1:
        return mean, math.nan
    sem = float(stats.sem(values))
    return mean, float(stats.t.ppf(0.975, values.size - 1)) * sem


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-task differences a - b with its 95% t interval and the paired t-test's two-sided p-value."""

    mean: float
    ci95: float
    p_value: float
    tasks: int

    def as_dict(self) -> dict:
        """JSON-ready form (NaN stays NaN; the table writers turn it into null)."""
        return {"mean": self.mean, "ci95": self.ci95, "p_value": self.p_value, "tasks": self.tasks}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """a - b paired by task (same target tasks, same order): mean, 95% CI half-width, paired t-test p-value."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same tasks, got {a.size} and {b.size}")
    mean, half = mean_ci95(a - b)
    if a.size < 2:
        p = math.nan
    elif np.allclose(a - b, (a - b)[0]):
        p = 1.0 if (a - b)[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return PairedDifference(mean, half, p, int(a.size))


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation and its two-sided p-value; NaN for fewer than 3 pairs or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def within_group_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 0..1 of `values` within their own group (ties in order of appearance), for pooling groups."""
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return order / max(len(values) - 1, 1)


def pooled_spearman(groups: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[float, float]:
    """Spearman's rho and p-value of (x, y) pairs pooled over groups (collective seeds), each side ranked within its
    group first, so that a group's level does not count as agreement."""
    xs = [r for x, _ in groups for r in within_group_ranks(x)]
    ys = [r for _, y in groups for r in within_group_ranks(y)]
    return spearman(xs, ys)
