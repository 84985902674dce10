"""Result tables on disk: JSON with NaN as null, and CSV with chosen columns first."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.atomic import write_text
from core.names import decoded


def jsonable(value: object) -> object:
    """A copy with non-finite floats as None, tuples as lists and undecodable bytes of names as \\xNN (no lone
    surrogates), so JSON stays standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return decoded(value)
    if isinstance(value, dict):
        return {decoded(k) if isinstance(k, str) else k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def csv_text(rows: Iterable[Mapping[str, Any]], first: Sequence[str] = ()) -> str:
    """CSV of dict rows: columns `first`, then every other key in first-seen order (nested objects spread into
    columns, lists as space-separated cells)."""
    rows = [_flat(jsonable(dict(row))) for row in rows]
    columns = list(dict.fromkeys(list(first) + [k for row in rows for k in row]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def _flat(row: dict) -> dict:
    """A row with nested objects spread into columns: {"vs_scratch": {"mean": m}} -> {"vs_scratch_mean": m}."""
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], first: Sequence[str] = ()) -> None:
    """Write rows as CSV atomically (see csv_text)."""
    write_text(path, csv_text(rows, first))


def results_json_text(result: object) -> str:
    """A result object as indented, key-sorted JSON text (NaN as null)."""
    return json.dumps(jsonable(result), indent=2, sort_keys=True) + "\n"


def write_results_json(path: str | os.PathLike, result: object) -> None:
    """Write a result object as JSON atomically (NaN as null)."""
    write_text(path, results_json_text(result))
