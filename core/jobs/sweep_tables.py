"""A sweep's tables: every row, every target task, and a summary over collective seeds with paired differences."""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from core.atomic import write_text
from core.individual.twins import is_twin
from core.jobs.sweep import SweepPlan
from core.stats import mean_ci95, paired_difference
from core.tables import csv_text, jsonable, write_csv, write_results_json

RESULT_FILES = ("results.csv", "tasks.csv", "summary.json", "summary.csv", "summary.html")
TIMING_FIELDS = ("seconds",)  # wall time differs between runs of one job: kept in results/<key>.json only
SEED = "seed"
ROW_FIRST = ("method", "size", "mean_accuracy", "ci95")
PER_RUN_FIELDS = ("task_accuracies", "vs_scratch", "vs_twin", "twin_mean_accuracy", "mean_accuracy", "ci95")


def grid_columns(plan: SweepPlan) -> tuple[list[str], dict[str, str]]:
    """Column names: collective axes as named, individual axes too unless a collective axis has the name."""
    run_axes, setting_axes = plan.spec.grid_fields
    renamed = {name: (f"individual_{name}" if name in run_axes else name) for name in setting_axes}
    return list(run_axes), renamed


def result_rows(plan: SweepPlan) -> list[dict[str, Any]]:
    """One row per collective run x individual setting x method (and size): the fields of `individual --json` rows."""
    run_axes, renamed = grid_columns(plan)
    rows = []
    for cell in plan.cells:
        result = plan.store.result(cell.job)
        grid = dict(cell.run_setting.grid)
        grid.update({renamed[name]: value for name, value in cell.setting.grid})
        keys = {"collective_key": cell.run.key, "fewshot_key": cell.job.key}
        for row in result["rows"] + result["sizes"]:
            kept = {k: v for k, v in row.items() if k not in TIMING_FIELDS}
            rows.append({**grid, **{"size": row.get("size", "")}, **kept, **keys})
    return rows


def task_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target task of every result row: its accuracy, for paired analysis."""
    out = []
    for row in rows:
        base = {k: v for k, v in row.items() if k not in PER_RUN_FIELDS}
        for task, accuracy in enumerate(row["task_accuracies"]):
            out.append({**base, "task": task, "accuracy": accuracy})
    return out


def summary_rows(plan: SweepPlan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per individual setting x method (x size): mean accuracy over collective seeds, its 95% CI, and the paired
    difference to scratch of the same setting and size (a size point: to its twin, named in `twin`), paired by
    seed."""
    run_axes, renamed = grid_columns(plan)
    group_fields = [a for a in run_axes if a != SEED] + list(renamed.values())
    groups: dict[tuple, dict[str, dict[Any, float]]] = defaultdict(lambda: defaultdict(dict))
    twins: dict[tuple, str] = {}
    for row in rows:
        group = tuple(json.dumps(row.get(f), sort_keys=True) for f in group_fields) + (row["size"],)
        groups[group][row["method"]][(row.get(SEED), row["collective_key"])] = row["mean_accuracy"]
        if "twin" in row:
            twins[group, row["method"]] = row["twin"]
    summary = []
    for group, methods in groups.items():
        for method, by_run in methods.items():
            twin = twins.get((group, method))
            scratch = methods.get(twin or "scratch", {})
            runs = sorted(by_run, key=lambda r: (r[0] is None, r[0], r[1]))
            values = [by_run[r] for r in runs]
            mean, half = mean_ci95(values)
            entry = {"method": method, "size": group[-1]}
            entry.update({f: json.loads(v) for f, v in zip(group_fields, group[:-1])})
            entry.update({"seeds": [r[0] for r in runs], "mean_accuracy": mean, "ci95": half})
            if twin is not None:
                entry["twin"] = twin
            paired = [r for r in runs if r in scratch]
            if method != "scratch" and not is_twin(method) and len(paired) == len(runs):
                diff = paired_difference(values, [scratch[r] for r in runs])
                entry["vs_scratch"] = {"mean": diff.mean, "ci95": diff.ci95, "p_value": diff.p_value}
            summary.append(entry)
    return summary


def write_tables(plan: SweepPlan, out: Path) -> dict[str, Path]:
    """Write the five result files into `out`; returns their paths."""
    rows = result_rows(plan)
    summary = summary_rows(plan, rows)
    paths = {name: out / name for name in RESULT_FILES}
    write_csv(paths["results.csv"], rows, ROW_FIRST)
    write_csv(paths["tasks.csv"], task_rows(rows), ("method", "size", "task", "accuracy"))
    write_results_json(paths["summary.json"], summary)
    write_csv(paths["summary.csv"], summary, ROW_FIRST)
    write_text(paths["summary.html"], summary_html(plan, summary))
    return paths


def _plotly_js() -> str:
    """plotly.js as the plotly package ships it, inlined so the page works offline."""
    spec = importlib.util.find_spec("plotly")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def summary_html(plan: SweepPlan, summary: list[dict[str, Any]]) -> str:
    """An offline page: mean accuracy per method with its 95% CI over seeds, and the paired difference to scratch."""
    run_axes, renamed = grid_columns(plan)
    label_fields = [a for a in run_axes if a != SEED] + list(renamed.values())
    series: dict[str, list[dict]] = defaultdict(list)
    for entry in summary:
        label = ", ".join(f"{f} {entry.get(f)}" for f in label_fields) or "all runs"
        series[label + (f" [{entry['size']}]" if entry["size"] else "")].append(entry)
    accuracy, versus = [], []
    for label, entries in series.items():
        names = [e["method"] for e in entries]
        accuracy.append(_bars(label, names, [e["mean_accuracy"] for e in entries], [e["ci95"] for e in entries]))
        paired = [e for e in entries if "vs_scratch" in e]
        versus.append(
            _bars(
                label,
                [e["method"] for e in paired],
                [e["vs_scratch"]["mean"] for e in paired],
                [e["vs_scratch"]["ci95"] for e in paired],
            )
        )
    seeds = sorted({s for e in summary for s in e["seeds"] if s is not None})
    title = f"{Path(plan.spec.path).name}: {len(plan.runs)} collective runs (seeds {seeds}), 95% CI across seeds"
    figures = [
        (
            "accuracy",
            accuracy,
            {"title": {"text": title}, "barmode": "group", "yaxis": {"title": {"text": "accuracy"}}},
        ),
        (
            "versus",
            versus,
            {
                "title": {
                    "text": "minus scratch of the same setting (a size point: its twin), paired by collective seed"
                },
                "barmode": "group",
                "yaxis": {"title": {"text": "accuracy difference"}},
            },
        ),
    ]
    divs = "".join(f'<div id="{name}" style="height:460px"></div>' for name, _, _ in figures)
    calls = "".join(
        f"Plotly.newPlot({json.dumps(name)}, {json.dumps(jsonable(data))}, {json.dumps(layout)});"
        for name, data, layout in figures
    )
    table = csv_text(summary, ROW_FIRST).replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>learngene sweep summary</title>"
        f"<script>{_plotly_js()}</script></head><body>{divs}<pre>{table}</pre><script>{calls}</script></body></html>\n"
    )


def _bars(label: str, names: list[str], values: list[float], errors: list[float | None]) -> dict[str, Any]:
    return {
        "type": "bar",
        "name": label,
        "x": names,
        "y": values,
        "error_y": {"type": "data", "array": [0 if e is None else e for e in jsonable(errors)], "visible": True},
    }
