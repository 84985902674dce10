"""Jobs as values: stable keys, events that survive the trip from a worker, a store that never computes twice."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SHORT

from core.collective.config import preset
from core.errors import LearngeneError
from core.events import EpochEnded, Note, TaskFinished, TaskStarted
from core.individual.config import individual_preset
from core.jobs.execute import execute
from core.jobs.messages import from_message, to_message
from core.jobs.spec import CollectiveJob, FewShotJob, run_identity
from core.jobs.store import JobStore
from core.jobs.sweep_spec import parse_spec


def fewshot(run_dir, **changes) -> FewShotJob:
    job = FewShotJob(
        run_dir=str(run_dir),
        run_id=run_identity(run_dir),
        config=individual_preset("fast", epochs=2),
        way=5,
        shot=1,
        tasks=2,
        methods=("learngene", "scratch"),
    )
    return dataclasses.replace(job, **changes)


def test_a_job_key_names_everything_that_changes_the_result_and_nothing_else(short_run, tmp_path):
    job = CollectiveJob(preset("smoke", **SHORT), threads=1)
    assert job.key == CollectiveJob(preset("smoke", **SHORT), threads=1).key
    assert job.key.startswith("collective-")
    for other in (
        CollectiveJob(preset("smoke", **SHORT), threads=2),
        CollectiveJob(preset("smoke", **dict(SHORT, seed=1)), threads=1),
        CollectiveJob(preset("smoke", **SHORT), threads=1, root="/elsewhere"),
    ):
        assert other.key != job.key
    evaluation = fewshot(short_run)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(short_run), str(copy)], check=True)
    assert fewshot(copy).key == evaluation.key  # where the run lies is not part of the result
    assert fewshot(short_run, shot=5).key != evaluation.key
    assert fewshot(short_run, threads=2).key != evaluation.key
    assert fewshot(short_run, run_id="run-other").key != evaluation.key
    assert fewshot(short_run, prefixes=True).key != evaluation.key


def test_jobs_without_the_prefix_study_keep_the_keys_they_had_before_it_existed():
    """Sweeps finished before the prefix study find their results: the key below is the one the code before that
    study gave this job (commit 265789b), and turning the study on gives another."""
    job = FewShotJob(run_dir=None, run_id="run-fixed", config=individual_preset("fast"), way=5, shot=1, tasks=20)
    assert dataclasses.replace(job, windows=True).key == "fewshot-1d2a0caab9c0fd6f"
    assert dataclasses.replace(job, windows=True, prefixes=True).key != "fewshot-1d2a0caab9c0fd6f"


def test_only_jobs_that_fine_tune_the_collective_model_change_key_with_its_head_on_the_features():
    """Results of collective fine-tuning with the hidden fc layers are not taken for the new recipe's; every other job
    finds its results: the old keys below are what the code before the change gave (commit ca4d37e)."""
    job = FewShotJob(run_dir=None, run_id="run-fixed", config=individual_preset("fast"), way=5, shot=1, tasks=20)
    job = dataclasses.replace(job, windows=True)
    kept = {
        "fewshot-1d2a0caab9c0fd6f": job,
        "fewshot-8dd0798caed4b9c9": dataclasses.replace(job, baselines=True, methods=("learngene", "scratch", "front")),
    }
    changed = {
        "fewshot-01a9f7eee18f5576": dataclasses.replace(job, baselines=True),
        "fewshot-c062d614ebe7bf09": dataclasses.replace(job, methods=("collective-finetune", "nearest-centroid")),
        "fewshot-2fdec498a8ca2b14": dataclasses.replace(job, sizes=True),
    }
    assert all(j.key == old for old, j in kept.items())
    assert all(j.key != old and j.identity()["finetune_head"] == "features" for old, j in changed.items())


def test_a_job_key_is_the_same_in_another_process():
    code = (
        "from core.collective.config import preset; from core.jobs.spec import CollectiveJob; "
        "print(CollectiveJob(preset('smoke', tasks=3, epochs=2), threads=1).key)"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == CollectiveJob(preset("smoke", **SHORT), threads=1).key


def test_engine_events_survive_the_trip_as_plain_messages():
    events = [
        TaskStarted(1, 3, 2, {"conv1": 8}, (("conv2", 4),)),
        EpochEnded(
            0,
            1,
            2,
            0.5,
            0.75,
            ("conv1", "fc1"),
            np.array([0.1, 0.2]),
            np.array([0.3, 0.4]),
            np.arange(6, dtype=np.float32).reshape(2, 3),
            np.array([1.0, 2.0]),
        ),
        TaskFinished(2, 3, 1.0, 0.6, 0.7, {"conv1": 8}, {"healthy": True, "dead_fraction": {"fc1": 0.0}}),
        Note("note: hello", important=False),
    ]
    for event in events:
        message = to_message(event)
        back = from_message(message)
        assert type(back) is type(event)
        for field in dataclasses.fields(event):
            mine, theirs = getattr(event, field.name), getattr(back, field.name)
            if isinstance(mine, np.ndarray):
                assert theirs.dtype == mine.dtype and np.array_equal(theirs, mine)
            else:
                assert theirs == mine
    assert to_message(object()) is None


def test_a_finished_fewshot_job_is_read_from_disk_by_key_and_never_computed_twice(short_run, tmp_path):
    store = JobStore.at(tmp_path / "store")
    job = fewshot(short_run)
    first = execute(job, store)
    assert not first.reused
    result = store.result(job)
    assert [r["method"] for r in result["rows"]] == ["learngene", "scratch"]
    assert result["job_key"] == job.key and result["setup"]["threads"] == 1

    def no_training(event):
        raise AssertionError(f"the job ran again: {event}")

    again = execute(job, store, listeners=[no_training])
    assert again.reused and again.path == first.path


SPEC = """
[collective]
dataset = "glyphs"
preset = "smoke"
tasks = 3
{collective}
[individual]
way = 5
{individual}
"""


@pytest.mark.parametrize(
    "collective, individual, named",
    [
        ("sed = 1", "", "collective.sed"),
        ("seed = [0, 'one']", "", "seed"),
        ("epochs = 0", "", "epochs"),
        ("", "preset = 'huge'", "individual.preset"),
        ("", "shot = [1, 0]", "individual.shot"),
        ("", "methods = ['learngene', 'magic']", "individual.methods"),
        ("", "lr = 'fast'", "individual.lr"),
        ("", "frobnicate = true", "individual.frobnicate"),
        ("", "seed = []", "individual.seed"),
        ("", "prefixes = 'yes'", "individual.prefixes"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_key(tmp_path, collective, individual, named):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(collective=collective, individual=individual))
    with pytest.raises(LearngeneError) as caught:
        parse_spec(path)
    message = str(caught.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_spec_parses_and_quotes_the_command_that_runs_it(path):
    """docs/ pastes the output of the example specs: each one is a valid sweep and says how it is run."""
    spec = parse_spec(path)
    assert spec.collective and spec.individual
    assert f"learngene sweep examples/{path.name} --out " in path.read_text()


def test_a_spec_grid_is_the_product_of_its_lists(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(collective="seed = [0, 1, 2]\nwidths = [8, 8, 16, 16]", individual="shot = [1, 5]"))
    spec = parse_spec(path)
    assert [dict(s.grid) for s in spec.collective] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert [dict(s.grid) for s in spec.individual] == [{"shot": 1}, {"shot": 5}]
    assert spec.grid_fields == (("seed",), ("shot",))
