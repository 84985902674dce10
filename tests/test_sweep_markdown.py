"""`learngene sweep --markdown`: results tables whose every number is the sweep's own results, recomputed here."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from scipy import stats

SPEC = """
[collective]
dataset = "glyphs"
preset = "smoke"
tasks = 3
epochs = 2
seed = [0, 1]

[individual]
way = 5
shot = [1]
tasks = 3
epochs = 2
methods = ["learngene", "scratch", "front"]
windows = true
prefixes = true
sizes = true
"""


def sweep(spec: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "core.cli", "sweep", str(spec), "--out", str(out), "--workers", "2", *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, str]:
    """A finished two-seed sweep with the window and prefix studies and the size sweep, and the Markdown printed by a
    second call."""
    folder = tmp_path_factory.mktemp("markdown")
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    out = folder / "out"
    first = sweep(spec, out)
    assert first.returncode == 0, first.stderr
    again = sweep(spec, out, "--markdown")
    assert again.returncode == 0, again.stderr
    assert "0 to run" in again.stderr
    return out, again.stdout


def results_by_seed(out: Path) -> dict[int, dict]:
    """Each seed's few-shot result file, found through results.csv's keys (not through the Markdown code)."""
    keys = {}
    with open(out / "results.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            keys[int(row["seed"])] = row["fewshot_key"]
    return {seed: json.loads((out / "results" / f"{key}.json").read_text()) for seed, key in keys.items()}


def table_row(markdown: str, first_cell: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_each_method_row_is_its_mean_over_seeds_and_its_paired_gain_over_scratch(finished):
    out, markdown = finished
    results = results_by_seed(out)
    assert sorted(results) == [0, 1]
    methods = [r["method"] for r in results[0]["rows"] if r["method"] != "scratch"]
    assert len(methods) == 2
    for method in methods:
        mine = [next(r for r in res["rows"] if r["method"] == method)["mean_accuracy"] for res in results.values()]
        base = [next(r for r in res["rows"] if r["method"] == "scratch")["mean_accuracy"] for res in results.values()]
        cells = table_row(markdown, method)
        gain = np.subtract(mine, base)
        half = stats.t.ppf(0.975, 1) * stats.sem(gain)
        assert cells[2].startswith(f"{np.mean(mine):.3f}")
        assert cells[3] == f"{gain.mean():+.3f} ± {half:.3f}"
        assert cells[4] == f"{int((gain > 0).sum())} of 2"
        params = next(r for r in next(iter(results.values()))["rows"] if r["method"] == method)["params"]
        assert cells[1] == f"{params:,}"


def test_each_size_point_row_is_its_mean_over_seeds_and_its_paired_gain_over_its_twin(finished):
    out, markdown = finished
    results = results_by_seed(out)

    def point(result: dict, method: str, size: str) -> dict:
        return next(p for p in result["sizes"] if (p["method"], p["size"]) == (method, size))

    points = [(p["method"], p["size"]) for p in results[0]["sizes"] if "twin" in p]
    assert {method for method, _ in points} == {"learngene", "front inheritance"}
    for method, size in points:
        mine = [point(res, method, size)["mean_accuracy"] for res in results.values()]
        twin = [point(res, point(res, method, size)["twin"], size)["mean_accuracy"] for res in results.values()]
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {method} | {size} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        gain = np.subtract(mine, twin)
        half = stats.t.ppf(0.975, 1) * stats.sem(gain)
        assert cells[2] == f"{point(results[0], method, size)['params']:,}"
        assert cells[3].startswith(f"{np.mean(mine):.3f} ± ")
        assert cells[4].startswith(f"{np.mean(twin):.3f} ± ")
        assert cells[5] == (f"{gain.mean():+.3f} ± {half:.3f}" if np.isfinite(half) else f"{gain.mean():+.3f}")
        assert cells[6] == f"{int((gain > 0).sum())} of 2"


@pytest.mark.parametrize("study_name, title", [("windows", "Windows"), ("prefixes", "Front prefixes")])
def test_each_block_of_a_study_reports_its_mean_accuracy_over_seeds(finished, study_name, title):
    out, markdown = finished
    results = results_by_seed(out)
    table = markdown.split(f"**{title}: accuracy of each block**", 1)[1].split("\n\n**")[0]
    blocks = [r["method"] for r in results[0][study_name]["rows"]]
    assert len(blocks) >= 3
    for block in blocks:
        line = next(line for line in table.splitlines() if line.startswith(f"| shot 1 | {block} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        values = [
            next(r for r in res[study_name]["rows"] if r["method"] == block)["mean_accuracy"]
            for res in results.values()
        ]
        half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
        assert cells[2:] == [str(len(values)), f"{np.mean(values):.3f} ± {half:.3f}"]


@pytest.mark.parametrize("study_name, title", [("windows", "Windows"), ("prefixes", "Front prefixes")])
def test_each_criterion_reports_its_rank_correlation_with_transfer_per_seed_and_pooled_within_seed(
    finished, study_name, title
):
    out, markdown = finished
    results = results_by_seed(out)
    table = markdown.split(f"**{title}: each criterion's rank correlation with transfer**", 1)[1].split("\n\n**")[0]
    for criterion in ("paper", "relative", "transfer"):
        line = next(line for line in table.splitlines() if line.startswith("| shot 1 |") and f"| {criterion} |" in line)
        cells = [c.strip() for c in line.strip("|").split("|")]
        ranked_scores, ranked_accuracy = [], []
        for position, seed in enumerate(sorted(results)):
            study = results[seed][study_name]["rows"]
            scores = [r["scores"][criterion] for r in study]
            accuracy = [r["mean_accuracy"] for r in study]
            rho = stats.spearmanr(scores, accuracy).statistic
            expected = "n/a" if not np.isfinite(rho) else f"{rho:+.2f}"
            assert cells[2 + position] == expected
            ranked_scores.extend(stats.rankdata(scores, method="ordinal") - 1)
            ranked_accuracy.extend(stats.rankdata(accuracy, method="ordinal") - 1)
        pooled = stats.spearmanr(ranked_scores, ranked_accuracy).statistic
        assert cells[-1].startswith(f"{pooled:+.2f} (p ")


WIDTHS = """
[collective]
dataset = "glyphs"
preset = "smoke"
tasks = 3
epochs = 2
seed = 0

[individual]
way = 5
shot = 1
tasks = 2
epochs = 1
methods = ["learngene", "scratch"]
width_multiplier = [0.5, 1.0]
"""


def test_each_settings_table_gives_the_parameters_of_its_own_models(tmp_path):
    """A grid over the new layers' width: each table's params column is that setting's models, not the first's."""
    spec = tmp_path / "spec.toml"
    spec.write_text(WIDTHS)
    done = sweep(spec, tmp_path / "out", "--markdown")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        params = {(r["width_multiplier"], r["method"]): int(r["params"]) for r in csv.DictReader(handle)}
    assert params[("0.5", "scratch")] < params[("1.0", "scratch")]
    parts = re.split(r"\*\*width_multiplier ([0-9.]+)\*\*", done.stdout)
    tables = dict(zip(parts[1::2], parts[2::2]))
    assert sorted(tables) == ["0.5", "1.0"], done.stdout
    for width, part in tables.items():
        for method in ("learngene", "scratch"):
            assert table_row(part, method)[1] == f"{params[(width, method)]:,}"
