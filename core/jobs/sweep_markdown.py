"""docs/results.md's Markdown from a finished sweep: each method's accuracy over collective seeds, its gain
over scratch paired by seed, each size point's gain over its twin (scratch of its own architecture) paired by seed,
and each criterion's rank correlation with transfer per seed and pooled.

Intervals are 95% t-intervals over collective seeds (the unit a claim about the method generalises over); the
per-task interval of each run is reported beside them as its mean over seeds. The pooled correlation ranks scores
and accuracies within each seed first, so that a seed whose windows all score higher does not count as a trend.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import numpy as np

from core.individual.twins import is_twin
from core.jobs.sweep import SweepPlan
from core.jobs.sweep_tables import SEED, grid_columns, result_rows, summary_rows
from core.stats import mean_ci95, pooled_spearman


def _number(value: float, digits: int = 3, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p_value(p: float) -> str:
    return "p < 0.001" if math.isfinite(p) and p < 0.001 else f"p {_number(p, 3)}"


def _interval(mean: float, half: float, signed: bool = False) -> str:
    text = _number(mean, signed=signed)
    return text if half is None or not math.isfinite(half) else f"{text} ± {half:.3f}"


def _setting_label(entry: dict[str, Any], fields: list[str]) -> str:
    return ", ".join(f"{f} {json.dumps(entry.get(f))}" for f in fields) or "every setting"


def accuracy_tables(plan: SweepPlan) -> str:
    """One table per individual setting: method, parameters, accuracy and gain over scratch across seeds."""
    rows = result_rows(plan)
    summary = summary_rows(plan, rows)
    run_axes, renamed = grid_columns(plan)
    fields = [a for a in run_axes if a != SEED] + list(renamed.values())
    params: dict[tuple, int] = {}
    per_task: dict[tuple, list[float]] = defaultdict(list)
    above: dict[tuple, list[bool]] = defaultdict(list)
    scratch = {
        (_setting_label(r, fields), r.get(SEED), r["collective_key"]): r["mean_accuracy"]
        for r in rows
        if r["method"] == "scratch" and not r["size"]
    }
    for row in rows:
        if row["size"]:
            continue
        label = _setting_label(row, fields)
        params.setdefault((label, row["method"]), row["params"])
        per_task[(label, row["method"])].append(row["ci95"])
        base = scratch.get((label, row.get(SEED), row["collective_key"]))
        if base is not None and row["method"] != "scratch":
            above[(label, row["method"])].append(row["mean_accuracy"] > base)
    out = []
    for entry in summary:
        if entry["size"]:
            continue
        label = _setting_label(entry, fields)
        if not out or out[-1][0] != label:
            out.append((label, []))
        method = entry["method"]
        vs = entry.get("vs_scratch")
        wins = above.get((label, method), [])
        task_half = float(np.nanmean(per_task[(label, method)])) if per_task[(label, method)] else math.nan
        out[-1][1].append(
            f"| {method} | {params[(label, method)]:,} | {_interval(entry['mean_accuracy'], entry['ci95'])} | "
            f"{'' if vs is None else _interval(vs['mean'], vs['ci95'], signed=True)} | "
            f"{f'{sum(wins)} of {len(wins)}' if wins else ''} | ± {task_half:.3f} |"
        )
    seeds = sorted({s for e in summary for s in e["seeds"] if s is not None})
    head = (
        f"| method | params | accuracy over {len(seeds)} seeds | vs scratch (paired by seed) | seeds above scratch "
        "| per-task 95% CI (mean) |\n|---|---|---|---|---|---|"
    )
    return "\n\n".join(f"**{label}**\n\n{head}\n" + "\n".join(lines) for label, lines in out)


def size_tables(plan: SweepPlan) -> str:
    """One table per individual setting of a size sweep: each strategy at each size, its parameters, its accuracy
    and its twin's over seeds, and its gain over the twin paired by seed. Empty without size points."""
    every = result_rows(plan)
    rows = [r for r in every if r["size"]]
    if not rows:
        return ""
    run_axes, renamed = grid_columns(plan)
    fields = [a for a in run_axes if a != SEED] + list(renamed.values())
    params: dict[tuple, int] = {}
    above: dict[tuple, list[bool]] = defaultdict(list)
    for row in rows:
        key = (_setting_label(row, fields), row["method"], row["size"])
        params.setdefault(key, row["params"])
        if not is_twin(row["method"]):
            above[key].append(row["mean_accuracy"] > row["twin_mean_accuracy"])
    summary = [e for e in summary_rows(plan, every) if e["size"]]
    twins = {(_setting_label(e, fields), e["method"], e["size"]): e for e in summary if is_twin(e["method"])}
    seeds = sorted({s for e in summary for s in e["seeds"] if s is not None})
    head = (
        f"| strategy | size | params | accuracy over {len(seeds)} seeds | twin (scratch, same architecture) | "
        "vs twin (paired by seed) | seeds above twin |\n|---|---|---|---|---|---|---|"
    )
    out: list[tuple[str, list[str]]] = []
    points = [e for e in summary if not is_twin(e["method"])]
    labels = list(dict.fromkeys(_setting_label(e, fields) for e in points))
    for entry in sorted(points, key=lambda e: (labels.index(_setting_label(e, fields)), e["method"])):
        label = _setting_label(entry, fields)
        if not out or out[-1][0] != label:
            out.append((label, []))
        key = (label, entry["method"], entry["size"])
        twin = twins[(label, entry["twin"], entry["size"])]
        vs = entry.get("vs_scratch")
        wins = above[key]
        out[-1][1].append(
            f"| {entry['method']} | {entry['size']} | {params[key]:,} | "
            f"{_interval(entry['mean_accuracy'], entry['ci95'])} | {_interval(twin['mean_accuracy'], twin['ci95'])} | "
            f"{'' if vs is None else _interval(vs['mean'], vs['ci95'], signed=True)} | {sum(wins)} of {len(wins)} |"
        )
    return "\n\n".join(f"**{label}, by size**\n\n{head}\n" + "\n".join(lines) for label, lines in out)


def _studies(plan: SweepPlan, study_name: str) -> dict[str, list[tuple[Any, dict]]]:
    """Each individual setting's (seed, study) pairs of one study ("windows" or "prefixes"), in the plan's order."""
    _, renamed = grid_columns(plan)
    fields = list(renamed.values())
    studies: dict[str, list[tuple[Any, dict]]] = defaultdict(list)
    for cell in plan.cells:
        study = (plan.store.result(cell.job) or {}).get(study_name)
        if study:
            label = _setting_label(dict(cell.setting.grid), fields)
            studies[label].append((dict(cell.run_setting.grid).get(SEED), study))
    return studies


def block_table(studies: dict[str, list[tuple[Any, dict]]]) -> str:
    """Per setting and block of one study (`_studies`): its accuracy over the collective seeds with the 95% interval
    across them."""
    lines = ["| setting | block | seeds | accuracy over seeds |", "|---|---|---|---|"]
    for label, runs in studies.items():
        accuracies: dict[str, list[float]] = defaultdict(list)
        for _, study in runs:
            for row in study["rows"]:
                accuracies[row["method"]].append(row["mean_accuracy"])
        for block, values in accuracies.items():
            lines.append(f"| {label} | {block} | {len(values)} | {_interval(*mean_ci95(values))} |")
    return "\n".join(lines)


def correlation_table(studies: dict[str, list[tuple[Any, dict]]]) -> str:
    """Per setting and criterion: Spearman's rho between block score and block accuracy in one study (`_studies`) on
    every seed, their mean over seeds with its 95% interval, and the rho of all blocks pooled (ranked within seed). A
    criterion that some seeds' results predate (the transfer criterion) shows n/a there and pools the others."""
    seeds = sorted({seed for runs in studies.values() for seed, _ in runs}, key=lambda s: (s is None, s))
    head = "| setting | criterion | " + " | ".join(f"seed {s}" for s in seeds) + " | mean over seeds | pooled |"
    lines = [head, "|" + "---|" * (len(seeds) + 4)]
    for label, runs in studies.items():
        criteria = list(dict.fromkeys(c for _, study in runs for c in study["correlation"]))
        by_seed = dict(runs)
        for criterion in criteria:
            has = {s: study for s, study in by_seed.items() if criterion in study["correlation"]}
            rhos = [has[s]["correlation"][criterion]["spearman"] if s in has else None for s in seeds]
            finite = [r for r in rhos if r is not None and math.isfinite(r)]
            mean, half = mean_ci95(finite)
            rho, p = pooled_spearman(
                [
                    ([r["scores"][criterion] for r in study["rows"]], [r["mean_accuracy"] for r in study["rows"]])
                    for study in has.values()
                ]
            )
            cells = " | ".join(_number(r, 2, signed=True) for r in rhos)
            lines.append(
                f"| {label} | {criterion} | {cells} | {_interval(mean, half, signed=True)} | "
                f"{_number(rho, 2, signed=True)} ({_p_value(p)}) |"
            )
    return "\n".join(lines)


def sweep_markdown(plan: SweepPlan) -> str:
    """The sweep's results section body: accuracy tables, the size sweep's and the criterion-transfer correlations
    (windows, front prefixes) when measured."""
    parts = [accuracy_tables(plan), size_tables(plan)]
    for name, title in {"windows": "Windows", "prefixes": "Front prefixes"}.items():
        studies = _studies(plan, name)
        if studies:
            parts.append(f"**{title}: accuracy of each block**\n\n{block_table(studies)}")
            parts.append(
                f"**{title}: each criterion's rank correlation with transfer**\n\n{correlation_table(studies)}"
            )
    return "\n\n".join(p for p in parts if p) + "\n"
