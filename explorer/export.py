"""Export results as CSV and figures as standalone HTML (plotly.js embedded, so the files open offline)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Mapping

import plotly.graph_objects as go

from core.atomic import write_text

EXPORT_DIR = "export"


def rows_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text of dict rows; the header is the union of keys in first-seen order."""
    rows = list(rows)
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return value


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as CSV atomically; returns the path."""
    write_text(path, rows_to_csv(rows))
    return path


def write_figure_html(path: Path, figure: go.Figure) -> Path:
    """Write a figure as one self-contained HTML file (works with no internet); returns the path."""
    html = go.Figure(figure).to_html(include_plotlyjs=True, full_html=True)
    write_text(path, html)
    return path


def export_all(run_dir: Path, figures: Mapping[str, go.Figure], tables: Mapping[str, list[dict]]) -> list[Path]:
    """Write every figure (HTML) and table (CSV) into `<run_dir>/export/`; returns the written paths."""
    folder = run_dir / EXPORT_DIR
    written = [write_figure_html(folder / f"{name}.html", fig) for name, fig in figures.items()]
    written += [write_csv(folder / f"{name}.csv", rows) for name, rows in tables.items() if rows]
    return written
