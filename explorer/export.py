"""Export results as CSV and figures as standalone HTML (plotly.js embedded, so the files open offline)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go

from core.atomic import write_text
from core.tables import write_csv

EXPORT_DIR = "export"


def write_figure_html(path: Path, figure: go.Figure) -> Path:
    """Write a figure as one self-contained HTML file (works with no internet); returns the path."""
    html = go.Figure(figure).to_html(include_plotlyjs=True, full_html=True)
    write_text(path, html)
    return path


def export_all(run_dir: Path, figures: Mapping[str, go.Figure], tables: Mapping[str, list[dict]]) -> list[Path]:
    """Write every figure (HTML) and table (CSV) into `<run_dir>/export/`; returns the written paths."""
    folder = run_dir / EXPORT_DIR
    written = [write_figure_html(folder / f"{name}.html", fig) for name, fig in figures.items()]
    for name, rows in tables.items():
        if rows:
            write_csv(folder / f"{name}.csv", rows)
            written.append(folder / f"{name}.csv")
    return written
