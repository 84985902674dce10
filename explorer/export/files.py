"""Export results as CSV and figures as standalone HTML (plotly.js embedded, so the files open offline), and the
URLs at which a Voila server hands them out."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import plotly.graph_objects as go

from core.atomic import write_text
from core.tables import write_csv

EXPORT_DIR = "export"
SERVED_ENV = "LEARNGENE_SERVED_ROOT"


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


def served_root() -> Path | None:
    """The folder whose files the Voila server hands out under voila/files/ (None outside Voila).

    $LEARNGENE_SERVED_ROOT when the server was started with that root (make explore serves the repository), else
    Voila's default: the notebook's folder, which is where it starts the kernel.
    """
    env = os.environ.get(SERVED_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path.cwd() if "VOILA_BASE_URL" in os.environ else None


def file_url(path: Path) -> str | None:
    """The URL at which Voila serves `path`, or None when the page cannot serve it."""
    root = served_root()
    if root is None:
        return None
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    base = os.environ.get("VOILA_BASE_URL", "/")
    return f"{base.rstrip('/')}/voila/files/{quote(relative.as_posix())}"
