"""Draw README's accuracy-against-model-size figure from `learngene individual --sizes --json` outputs.

One panel per result: a curve per inheritance strategy over parameter count (widths 1/8 to 1 of the collective
model), scratch of the same widths, the collective model fine-tuned as the reference point, nearest centroids on
its features as a dashed level, and the chance line.
Usage: python benchmarks/plot_results.py OUT.png NAME=RESULT.json [NAME=RESULT.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {
    "learngene": "#d62728",
    "front inheritance": "#ff7f0e",
    "weight selection": "#9467bd",
    "scratch": "#1f77b4",
}


def draw(ax: plt.Axes, name: str, result: dict) -> None:
    """One panel: a curve per strategy, the collective as a star, nearest centroids and chance as lines."""
    for method, colour in COLOURS.items():
        points = sorted((r for r in result["sizes"] if r["method"] == method), key=lambda r: r["params"])
        if not points:
            continue
        ax.errorbar(
            [p["params"] for p in points],
            [p["mean_accuracy"] for p in points],
            yerr=[p["ci95"] or 0 for p in points],
            marker="o",
            capsize=3,
            label=method,
            color=colour,
        )
    collective = next((r for r in result["sizes"] if r["size"] == "collective"), None)
    if collective:
        ax.errorbar(
            [collective["params"]],
            [collective["mean_accuracy"]],
            yerr=[collective["ci95"] or 0],
            marker="*",
            markersize=14,
            color="black",
            capsize=3,
            linestyle="none",
            label="collective model fine-tuned",
        )
    centroid = next((r for r in result["rows"] if r["method"] == "nearest-centroid"), None)
    if centroid:
        ax.axhline(centroid["mean_accuracy"], color="#2ca02c", linestyle="--", label="nearest centroids (collective)")
    way = result["setup"]["way"]
    ax.axhline(1 / way, color="#999999", linestyle=":", label=f"chance (1/{way})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("parameters of the model")
    ax.set_ylabel("mean accuracy (95% CI)")
    setup = result["setup"]
    ax.set_title(f"{name}: {way}-way {setup['shot']}-shot, {setup['tasks']} target tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, pairs = Path(argv[0]), [a.split("=", 1) for a in argv[1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 4.4), squeeze=False)
    for ax, (name, path) in zip(axes[0], pairs):
        draw(ax, name, json.loads(Path(path).read_text()))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
