"""Export results as CSV and figures as standalone HTML (plotly.js embedded, so the files open offline)."""

from __future__ import annotations

import hashlib
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


def view_folder(run_dir: Path, settings_json: str) -> Path:
    """The export folder of one view of a run: `<run_dir>/export/view-<hash of its settings>/`, so that two visitors
    with different views never overwrite each other's files (the same view writes the same files)."""
    return run_dir / EXPORT_DIR / f"view-{hashlib.sha256(settings_json.encode('utf-8')).hexdigest()[:12]}"


def export_all(folder: Path, figures: Mapping[str, go.Figure], tables: Mapping[str, list[dict]]) -> list[Path]:
    """Write every figure (HTML) and table (CSV) into `folder`; returns the written paths."""
    written = [write_figure_html(folder / f"{name}.html", fig) for name, fig in figures.items()]
    for name, rows in tables.items():
        if rows:
            write_csv(folder / f"{name}.csv", rows)
            written.append(folder / f"{name}.csv")
    return written
