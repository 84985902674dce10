"""The code layout: no import cycles in core/, explorer/ or lessons/, core/ never imports the widget layer, the
tutorials' figure helpers (lessons/) never import the explorer or widgets, modules stay small."""

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WIDGET_LIBRARIES = ("explorer", "ipywidgets", "plotly", "IPython", "voila")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(p): p for package in ("core", "explorer", "lessons") for p in sorted((REPO / package).rglob("*.py"))
    }


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module `path` imports, anywhere in the file (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imported(path, known) if m in known and m != name} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_in_core_or_explorer_is_part_of_an_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["core.errors"] = graph["core.errors"] | {"core.collective.runs"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "core.errors" in cycle


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("core")))
def test_core_never_imports_the_widget_layer(name):
    found = imported(modules()[name], modules())
    assert not {m for m in found if m.split(".")[0] in WIDGET_LIBRARIES}


def long_modules(package: str, limit: int = 400, root: Path = REPO) -> dict[str, int]:
    """Modules of `package` (under `root`) with more than `limit` lines, by path."""
    return {
        str(p.relative_to(root)): n
        for p in (root / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > limit
    }


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("lessons")))
def test_the_tutorials_figure_helpers_never_import_the_explorer_or_widgets(name):
    found = imported(modules()[name], modules())
    assert not {m for m in found if m.split(".")[0] in ("explorer", "ipywidgets", "voila")}


def test_no_module_of_the_tutorials_figure_helpers_is_over_400_lines():
    assert long_modules("lessons") == {}


def test_core_is_grouped_by_paper_stage_and_no_module_is_over_400_lines():
    packages = {p.parent.name for p in (REPO / "core").glob("*/*.py")}
    assert {"data", "collective", "learngene", "individual", "cli"} <= packages
    assert long_modules("core") == {}


def test_explorer_keeps_each_panel_in_its_own_room_and_no_module_is_over_400_lines():
    rooms = {p.parent.name for p in (REPO / "explorer").glob("*/*.py")}
    assert rooms == {"widgets", "collective", "criterion", "individual", "export"}
    assert long_modules("explorer") == {}


def test_the_line_count_finds_a_long_module(tmp_path):
    (tmp_path / "pkg" / "room").mkdir(parents=True)
    (tmp_path / "pkg" / "room" / "long.py").write_text("x = 1\n" * 401)
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 400)
    assert long_modules("pkg", root=tmp_path) == {"pkg/room/long.py": 401}


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("explorer.widgets")))
def test_the_shared_floor_never_imports_a_panel(name):
    """widgets/ is the floor every panel stands on: it imports no panel, the app or the page's settings."""
    found = imported(modules()[name], modules())
    assert not {m for m in found if m.startswith("explorer.") and not m.startswith("explorer.widgets")}


def test_the_tutorials_import_nothing_from_the_explorer_but_the_app():
    """A tutorial may show the app (`import explorer`); what it computes or draws with comes from elsewhere."""
    found = set()
    for path in sorted((REPO / "notebooks").glob("0*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "\n".join(
                    line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))
                )
                found |= {(path.name, m) for m in imports_of(source) if m.startswith("explorer.")}
    assert found == set()


def imports_of(source: str) -> set[str]:
    """Every module named by an import statement in `source`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names
