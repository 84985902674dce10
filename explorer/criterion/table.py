"""The criterion map as a table: one row per task and layer, as exported to CSV beside the figure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def map_rows(
    layer_names: Sequence[str],
    matrix: np.ndarray,
    tau: float,
    absolute: bool,
    criterion: str,
    selected: Sequence[str],
) -> list[dict]:
    """Long-format rows of a (tasks, layers) matrix: its value ("fraction"; None where not finite) and selection."""
    chosen = set(selected)
    return [
        {
            "task": t,
            "layer": name,
            "tau": tau,
            "absolute": absolute,
            "fraction": None if not np.isfinite(matrix[t, j]) else float(matrix[t, j]),
            "selected": name in chosen,
            "criterion": criterion,
        }
        for t in range(matrix.shape[0])
        for j, name in enumerate(layer_names)
    ]
