"""The Voila app notebook executes headless on a smoke run and leaves the app's widgets, with data, behind."""

import json
import shutil

import nbformat
from conftest import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"


def test_the_app_notebook_is_minimal_and_carries_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 1 and "explorer.show()" in code[0].source
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


def test_the_app_notebook_runs_on_the_run_named_in_the_environment(tmp_path, smoke_run, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(smoke_run, root / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    monkeypatch.setenv("LEARNGENE_RUNS", str(root))
    monkeypatch.setenv("LEARNGENE_RUN", "smoke")
    monkeypatch.delenv("QUERY_STRING", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[-1].outputs
    assert [o.output_type for o in outputs] == ["display_data"]
    assert "application/vnd.jupyter.widget-view+json" in outputs[0].data
    state = json.dumps(nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"])
    assert '"_options_labels": ["smoke"]' in state
    assert '"type": "heatmap"' in state and "learngene layers" in state
    assert "Traceback" not in state


def test_one_call_shows_the_app_for_any_run_directory_in_a_notebook_cell(tmp_path, smoke_run, monkeypatch):
    monkeypatch.setenv("LEARNGENE_RUNS", str(tmp_path / "elsewhere"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"import explorer\nexplorer.show({str(smoke_run)!r})")]
    NotebookClient(
        nb, timeout=180, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"]
    state = json.dumps(nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"])
    assert f'"_options_labels": ["{smoke_run.name}"]' in state and '"type": "heatmap"' in state
