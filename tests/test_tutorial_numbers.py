"""Every measured number the tutorials quote from the project's Results agrees with the Results text and tables."""

import re

import nbformat
import pytest
from conftest import REPO

# The Results page: docs/results.md once README's "## Results" section has moved there, else that section.
RESULTS_PAGE = REPO / "docs" / "results.md"
TUTORIALS = sorted((REPO / "notebooks").glob("0[1-9]_*.ipynb"))
# A cell quotes the Results when it names them; its decimals are then measured numbers from there.
CITES = re.compile(r"\bResults\b|results\.md|Earlier measurements")
NUMBER = re.compile(r"(?<![\w.])([+\-−]?\d+\.\d+)(?:\s*±\s*([+\-−]?\d+\.\d+))?(?![\w.]*\d)")
# A decimal right after a setting's name is a setting (momentum 0.9), not a measurement.
SETTING = re.compile(r"(?:momentum|lr|learning rate|tau|τ)\s*=?\s*$")
WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "ten": "10"}
NUMBER_WORD = r"\b(\d+|{})\s+".format("|".join(WORDS))
# The measurement design's counts: how the Results state each, and how a tutorial quotes it.
COUNTS = {
    "runs per dataset": (
        re.compile(NUMBER_WORD + r"(?:collective\s+)?runs\s+per\s+dataset"),
        re.compile(NUMBER_WORD + r"(?:collective\s+|glyph\s+|Omniglot\s+)?runs\b"),  # "on all five glyph runs"
    ),
    "target tasks per run": (re.compile(r"\b(\d+)\s+target\s+tasks\b"), re.compile(r"\b(\d+)\s+target\s+tasks\s+each")),
}


def results_text() -> str:
    """The Results text: the page when it exists, else README's "## Results" section up to the next heading."""
    if RESULTS_PAGE.is_file():
        return RESULTS_PAGE.read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Results\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end > 0 else None]


def _norm(number: str) -> str:
    """One spelling per signed decimal: '+' dropped, the minus sign made ASCII."""
    return number.replace("−", "-").lstrip("+")


def _points(number: str) -> str | None:
    """A three-decimal accuracy or difference as percentage points, as prose quotes it ('-0.035' -> '-3.5')."""
    whole, _, decimals = number.lstrip("+-").partition(".")
    if len(decimals) != 3:
        return None
    return ("-" if number.startswith("-") else "") + f"{float(whole + '.' + decimals) * 100:.1f}"


def known_numbers(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The decimals and 'a ± b' pairs the Results state, as written and, for table fractions, as points."""
    singles, pairs = set(), set()
    for match in NUMBER.finditer(text):
        a, b = _norm(match[1]), match[2] and _norm(match[2])
        singles |= {a} | ({_points(a)} - {None})
        if b:
            pairs.add((a, b))
            if _points(a) and _points(b):
                pairs.add((_points(a), _points(b)))
    return singles, pairs


def quoted(path) -> list[tuple[str, str, str | None]]:
    """(cell id, number, its ± part) for every decimal in the cells of a notebook that cite the Results: markdown
    text, and the comments of code cells."""
    out = []
    for cell in nbformat.read(path, as_version=4).cells:
        text = cell.source
        if cell.cell_type == "code":
            text = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
        if CITES.search(text):
            out += [
                (cell.get("id"), _norm(m[1]), m[2] and _norm(m[2]))
                for m in NUMBER.finditer(text)
                if not SETTING.search(text[max(0, m.start() - 16) : m.start()])
            ]
    return out


def counts(text: str, side: int) -> dict[str, set[str]]:
    """The design counts a text states, by kind, as digits; side 0 reads them as the Results state them, 1 as a
    tutorial quotes them."""
    return {kind: {WORDS.get(v, v) for v in patterns[side].findall(text)} for kind, patterns in COUNTS.items()}


def _name(path):
    return path.name


def test_the_results_text_is_found_and_its_table_fractions_read_as_the_points_its_prose_quotes():
    text = results_text()
    assert "| method |" in text and "Spearman" in text
    _, pairs = known_numbers(text)
    as_written = {(_norm(m[1]), _norm(m[2])) for m in NUMBER.finditer(text) if m[2]}
    derived = {(_points(a), _points(b)) for a, b in as_written if _points(a) and _points(b)}
    # The tables' fractions are known as points, and the Results' own prose quotes some of them that way.
    assert derived <= pairs and derived & as_written


@pytest.mark.parametrize("path", TUTORIALS, ids=_name)
def test_every_number_a_tutorial_quotes_from_the_results_is_in_the_results(path):
    singles, pairs = known_numbers(results_text())
    claims = quoted(path)
    assert claims, f"{path.name} quotes no measured number from the Results"
    wrong = [
        f"{cell}: {a}" + (f" ± {b}" if b else "")
        for cell, a, b in claims
        if (b and (a, b) not in pairs) or (not b and a not in singles)
    ]
    assert not wrong, f"{path.name} quotes numbers the Results do not state: {wrong}"


@pytest.mark.parametrize("path", TUTORIALS, ids=_name)
def test_the_runs_and_target_tasks_a_tutorial_names_are_those_of_the_results(path):
    stated = counts(results_text(), 0)
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and CITES.search(cell.source):
            for kind, values in counts(cell.source, 1).items():
                assert values <= stated[kind], f"{path.name} {cell.get('id')}: {kind} {values}, Results: {stated[kind]}"
