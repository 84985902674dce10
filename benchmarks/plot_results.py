"""Draw README's accuracy-against-model-size figure from `learngene individual --sizes --json` outputs.

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
    "scratch": "#1f77b4",
    "collective-finetune": "#2ca02c",
    "nearest-centroid": "#9467bd",
}


def draw(ax: plt.Axes, name: str, result: dict) -> None:
    """One panel: learngene and scratch curves over size, the other methods as points."""
    for method in ("learngene", "scratch"):
        points = sorted((r for r in result["sizes"] if r["method"] == method), key=lambda r: r["params"])
        ax.errorbar(
            [p["params"] for p in points],
            [p["mean_accuracy"] for p in points],
            yerr=[p["ci95"] or 0 for p in points],
            marker="o",
            capsize=3,
            label=f"{method} (size sweep)",
            color=COLOURS[method],
        )
    for row in result["rows"]:
        if row["method"] in ("learngene", "scratch"):
            continue
        colour = COLOURS.get(row["method"], "#7f7f7f")
        ax.errorbar(
            [row["params"]],
            [row["mean_accuracy"]],
            yerr=[row["ci95"] or 0],
            marker="s",
            capsize=3,
            linestyle="none",
            color=colour,
            label=row["method"] if row["method"] in COLOURS else None,
            alpha=0.8 if row["method"] in COLOURS else 0.5,
        )
    windows = [r for r in result["rows"] if r["method"].startswith("window")]
    if windows:
        ax.plot([], [], marker="s", linestyle="none", color="#7f7f7f", label="other windows (ablation)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("mean accuracy (95% CI)")
    setup = result.get("setup", {})
    ax.set_title(
        f"{name}: {setup.get('way', 5)}-way {setup.get('shot', '')}-shot, {setup.get('tasks', '')} target tasks"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, pairs = Path(argv[0]), [a.split("=", 1) for a in argv[1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 4.2), squeeze=False)
    for ax, (name, path) in zip(axes[0], pairs):
        draw(ax, name, json.loads(Path(path).read_text()))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
