"""Draw docs/results.md's accuracy-against-model-size figure from `learngene individual --sizes --json` outputs.

One column per result: on top a curve per inheritance strategy over parameter count (widths 1/8 to 1 of the
collective model) with its twin (scratch of exactly its architecture) dashed in the same colour, the collective model
fine-tuned as the reference point, nearest centroids on its features as a dashed level, and the chance line; below,
each point minus its twin, paired over the same target tasks, with its 95% interval. Results of the older pairing
(one scratch row per width) draw that scratch as its own curve and the differences to it. A sweep's output folder
(`learngene sweep SPEC --out FOLDER` of a spec with `sizes = true` and one individual setting) draws the means over
collective seeds, with 95% intervals and differences paired across seeds.
Usage: python benchmarks/plot_results.py OUT.png NAME=RESULT.json|SWEEP_FOLDER [NAME=... ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.individual.twins import TWIN_PHRASE, twin_name  # noqa: E402

COLOURS = {
    "learngene": "#d62728",
    "front inheritance": "#ff7f0e",
    "weight selection": "#9467bd",
    "collective-finetune": "black",
    "scratch": "#1f77b4",  # results of the older pairing only
}


def _curve(ax: plt.Axes, points: list[dict], y: list[float], err: list[float], **style: object) -> None:
    """Error bars at the points' parameter counts."""
    ax.errorbar([p["params"] for p in points], y, yerr=err, capsize=3, **style)


def draw(ax: plt.Axes, below: plt.Axes, name: str, result: dict) -> None:
    """One column: accuracy per strategy and its twin (top), each point minus its twin (bottom)."""
    twins = any("twin" in p for p in result["sizes"])
    for method, colour in COLOURS.items():
        points = sorted((r for r in result["sizes"] if r["method"] == method), key=lambda r: r["params"])
        if not points:
            continue
        reference = method == "collective-finetune"
        label = "collective model fine-tuned" if reference else method
        marker = dict(marker="*", markersize=14, linestyle="none") if reference else dict(marker="o")
        accuracy = [p["mean_accuracy"] for p in points]
        _curve(ax, points, accuracy, [p["ci95"] or 0 for p in points], label=label, color=colour, **marker)
        twin = sorted((r for r in result["sizes"] if r["method"] == twin_name(method)), key=lambda r: r["params"])
        if twin:
            shape = dict(marker="s", markersize=8, linestyle="none") if reference else dict(marker="s", linestyle="--")
            errors = [p["ci95"] or 0 for p in twin]
            _curve(ax, twin, [p["mean_accuracy"] for p in twin], errors, color=colour, mfc="white", **shape)
        paired = [p for p in points if p.get("vs_twin" if twins else "vs_scratch")]
        diffs = [p["vs_twin" if twins else "vs_scratch"] for p in paired]
        if diffs:
            means, errors = [100 * d["mean"] for d in diffs], [100 * (d["ci95"] or 0) for d in diffs]
            _curve(below, paired, means, errors, color=colour, **marker)
    if twins:
        ax.plot([], [], color="#555", linestyle="--", marker="s", mfc="white", label="its twin: scratch, same model")
    centroid = next((r for r in result["rows"] if r["method"] == "nearest-centroid"), None)
    if centroid:
        ax.axhline(centroid["mean_accuracy"], color="#2ca02c", linestyle="--", label="nearest centroids (collective)")
    way = result["setup"]["way"]
    ax.axhline(1 / way, color="#999999", linestyle=":", label=f"chance (1/{way})")
    below.axhline(0, color="#1f77b4", linestyle="--", linewidth=1)
    for axes in (ax, below):
        axes.set_xscale("log")
        axes.grid(alpha=0.3)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean accuracy (95% CI)")
    below.set_xlabel("parameters of the model")
    below.set_ylabel("minus its twin (points)" if twins else "minus scratch (points)")
    below.set_title(TWIN_PHRASE if twins else "older pairing: scratch of the same width", fontsize=9)
    setup = result["setup"]
    seeds = f", {setup['seeds']} collective seeds" if "seeds" in setup else ""
    ax.set_title(f"{name}: {way}-way {setup['shot']}-shot, {setup['tasks']} target tasks{seeds}")
    ax.legend(fontsize=7, loc="lower right")


def sweep_result(folder: Path) -> dict:
    """A sweep's size points as one result: each point's mean and interval over collective seeds, its difference to
    its twin paired by seed as `vs_twin`, and the parameters and setup from its rows."""
    summary = json.loads((folder / "summary.json").read_text())
    with open(folder / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    settings = {(r["way"], r["shot"], r["tasks"]) for r in rows}
    if len(settings) != 1:
        raise SystemExit(f"{folder}: draw a sweep of one individual setting (it has {len(settings)})")
    way, shot, tasks = (int(v) for v in settings.pop())
    params = {(r["method"], r["size"]): int(r["params"]) for r in rows}
    seeds = len({r["seed"] for r in rows})
    points = []
    for entry in summary:
        point = {**entry, "params": params[entry["method"], entry["size"]]}
        if "twin" in entry and "vs_scratch" in entry:
            point["vs_twin"] = point.pop("vs_scratch")
        points.append(point)
    return {
        "sizes": [p for p in points if p["size"]],
        "rows": [p for p in points if not p["size"]],
        "setup": {"way": way, "shot": shot, "tasks": tasks, "seeds": seeds},
    }


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, pairs = Path(argv[0]), [a.split("=", 1) for a in argv[1:]]
    fig, axes = plt.subplots(
        2, len(pairs), figsize=(6 * len(pairs), 6.6), squeeze=False, sharex="col", height_ratios=(3, 2)
    )
    for ax, below, (name, path) in zip(axes[0], axes[1], pairs):
        source = Path(path)
        draw(ax, below, name, sweep_result(source) if source.is_dir() else json.loads(source.read_text()))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
