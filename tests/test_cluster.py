"""Jobs on a real Dask LocalCluster of worker processes: shared keys, cancel, a killed worker, a killed client."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO
from distributed import Client

from core.collective.config import preset
from core.events import TaskFinished, TaskStarted
from core.jobs.cluster import run_on_worker, start_engine, wanted_by
from core.jobs.execute import execute
from core.jobs.spec import CollectiveJob
from core.jobs.store import JobStore
from core.jobs.sweep import plan_sweep, run_plan
from core.jobs.sweep_spec import parse_spec

SPEC = """
[collective]
dataset = "glyphs"
preset = "smoke"
tasks = 3
epochs = 2
seed = [0, 1]

[individual]
way = 5
shot = 1
tasks = 2
epochs = 2
methods = ["learngene", "scratch"]
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A LocalCluster of 2 worker processes x 1 thread, with a job store of its own."""
    engine = start_engine(JobStore.at(tmp_path_factory.mktemp("store")), workers=2, dashboard=False)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "sweep.toml"
    path.write_text(SPEC)
    return path


def sweep_cli(spec: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "core.cli", "sweep", str(spec), "--out", str(out), "--workers", "2", *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture(scope="module")
def undisturbed_out(spec_path, tmp_path_factory) -> Path:
    """The output folder of the sweep run from start to end by the command line."""
    out = tmp_path_factory.mktemp("undisturbed")
    proc = sweep_cli(spec_path, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    return out


@pytest.fixture(scope="module")
def undisturbed(undisturbed_out) -> str:
    """results.csv of the undisturbed sweep."""
    return (undisturbed_out / "results.csv").read_text()


def test_a_sweep_run_again_runs_nothing_and_says_so(spec_path, undisturbed_out, undisturbed):
    out = undisturbed_out
    started = time.monotonic()
    again = sweep_cli(spec_path, out, "--json")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert "4 jobs: 4 already finished, 0 to run" in stderr
    assert json.loads(stdout)["ran"] == 0
    assert (out / "results.csv").read_text() == undisturbed
    assert time.monotonic() - started < 60  # no cluster, no training: seconds (generous for a busy machine)
    for name in ("tasks.csv", "summary.json", "summary.csv", "summary.html"):
        assert (out / name).stat().st_size > 0


def test_a_bad_spec_is_refused_before_any_job_starts(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.replace("shot = 1", "shot = [1, -1]"))
    proc = sweep_cli(spec, tmp_path / "out")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert stderr.count("\n") == 1 and "individual.shot" in stderr
    assert not (tmp_path / "out" / "runs").exists()


def first_finished_task(folder: Path) -> bool:
    manifests = list(folder.glob("runs/*/manifest.json"))
    return any(json.loads(m.read_text() or "{}").get("finished_tasks", 0) >= 1 for m in manifests if m.stat().st_size)


def test_a_sweep_whose_client_was_killed_finishes_on_rerun_with_the_rows_of_an_undisturbed_one(
    spec_path, undisturbed, tmp_path
):
    out = tmp_path / "killed"
    proc = sweep_cli(spec_path, out, start_new_session=True)
    deadline = time.monotonic() + 300
    while not first_finished_task(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the client, its scheduler and its workers, mid-job
    proc.communicate()
    assert not (out / "results.csv").exists()
    rerun = sweep_cli(spec_path, out)
    _, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    assert (out / "results.csv").read_text() == undisturbed


def test_a_worker_killed_mid_job_is_replaced_and_the_sweep_ends_with_the_same_rows(engine, spec_path, undisturbed):
    from core.jobs.sweep_tables import write_tables

    plan = plan_sweep(parse_spec(spec_path), engine.store, engine.threads)
    first = next(job for job, _ in plan.runs)
    task_done = threading.Event()  # listeners run in the client's event loop: the kill happens in a thread of its own
    killed: list[int] = []

    def kill_its_worker():
        assert task_done.wait(300)
        worker = next(w for w, keys in engine.client.processing().items() if first.key in keys)
        pid = engine.client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_its_worker)
    killer.start()
    engine.submit(first, listeners=[lambda e: task_done.set() if isinstance(e, TaskFinished) else None])
    run_plan(plan, engine)
    killer.join()
    assert killed and killed[0] not in engine.client.run(os.getpid).values()  # it died mid-job and was replaced
    manifest = json.loads((engine.store.run_dir(first) / "manifest.json").read_text())
    assert manifest["finished_tasks"] == first.config.tasks
    plan.finished = {c.job.key for c in plan.cells} | {job.key for job, _ in plan.runs}
    write_tables(plan, engine.store.root)
    assert (engine.store.root / "results.csv").read_text() == undisturbed


def _profiling(dask_worker=None) -> list[str]:  # noqa: ANN001 - Dask passes its worker object
    return sorted(name for name in dask_worker.periodic_callbacks if name.startswith("profile"))


def _wakes_ms(server) -> dict[str, float]:  # noqa: ANN001 - a Dask scheduler, nanny or worker
    """How often a Dask process's event loop wakes for the bookkeeping that QUIET_CONFIG sets, in milliseconds."""
    names = ("tick", "monitor", "memory_monitor")
    return {name: pc.callback_time for name, pc in server.periodic_callbacks.items() if name in names}


def _worker_wakes(dask_worker=None) -> dict[str, float]:  # noqa: ANN001 - Dask passes its worker object
    return _wakes_ms(dask_worker)


def _scheduler_wakes(dask_scheduler=None) -> dict[str, float]:  # noqa: ANN001 - Dask passes its scheduler object
    return _wakes_ms(dask_scheduler)


QUIET = {"tick": 1000, "monitor": 5000, "memory_monitor": 1000}  # core.jobs.cluster.QUIET_CONFIG, in milliseconds


def test_our_cluster_runs_without_dasks_profiler_and_wakes_less_often_also_after_a_worker_crash(engine):
    """Its sampling every 10 ms takes the GIL that torch's small ops need between kernels (a sweep took 1.02-1.06x
    as long with it); a worker that the nanny starts again after a crash keeps it off. The event loops of the
    scheduler, the nannies and the workers wake every 1 s, 5 s and 1 s, not Dask's 20, 500 and 100 ms (their idle CPU,
    docs/benchmarks.md), the restarted worker's too."""
    before = engine.client.run(_profiling)
    assert len(before) == 2 and all(names == [] for names in before.values()), before
    assert engine.client.run_on_scheduler(_scheduler_wakes) == {"tick": 1000, "monitor": 5000}
    assert all(_wakes_ms(nanny) == QUIET for nanny in engine.cluster.workers.values())
    assert all(wakes == QUIET for wakes in engine.client.run(_worker_wakes).values())
    worker, pid = next(iter(engine.client.run(os.getpid).items()))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while worker in (workers := engine.client.scheduler_info()["workers"]) or len(workers) < 2:
        assert time.monotonic() < deadline, "the killed worker was not replaced within 60 s"
        time.sleep(0.5)
    after = engine.client.run(_profiling)
    assert len(after) == 2 and all(names == [] for names in after.values()), after
    assert all(wakes == QUIET for wakes in engine.client.run(_worker_wakes).values())


# Asked of each worker through builtins only: a function of this module would import it, and torch with it, there.
STARTED_WITH = "('torch' in __import__('sys').modules, __import__('os').environ.get('LEARNGENE_TEST_PROBE'))"


def test_workers_start_with_torch_loaded_and_this_processs_environment_of_the_moment(tmp_path, monkeypatch):
    """Forked from a fork server that imported torch once, a worker's first job pays no import; the fork server's
    environment is that of its own start, and each cluster's workers still get the environment of theirs."""
    for value in ("first", "second"):
        monkeypatch.setenv("LEARNGENE_TEST_PROBE", value)
        engine = start_engine(JobStore.at(tmp_path / value), workers=2, dashboard=False)
        try:
            seen = engine.client.run(eval, STARTED_WITH)
        finally:
            engine.close()
        assert sorted(seen.values()) == [(True, value), (True, value)], seen


EARLY_FORK_SERVER = """
import os, sys, time, psutil
from core.jobs.workers import start_fork_server
assert not start_fork_server("tcp://elsewhere:8786"), "a remote scheduler needs no local fork server"
assert start_fork_server(None) and 'torch' not in sys.modules
started = time.time()
from core.jobs.cluster import start_engine
from core.jobs.store import JobStore
engine = start_engine(JobStore.at(sys.argv[1]), workers=1, dashboard=False)
try:
    parent = psutil.Process(next(iter(engine.client.run(os.getppid).values())))
    print(parent.create_time() <= started, 'forkserver' in ' '.join(parent.cmdline()))
finally:
    engine.close()
"""


def test_a_fork_server_started_before_torch_is_imported_is_the_one_the_workers_come_from(tmp_path):
    """The sweep starts the fork server first, so that its imports overlap the command's own."""
    done = subprocess.run(
        [sys.executable, "-c", EARLY_FORK_SERVER, str(tmp_path / "store")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]


def test_the_sweep_command_starts_the_fork_server_before_it_imports_dask(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('[collective]\ndataset = "glyphs"\nunknown = 1\n')
    probe = (
        "import sys; import core.jobs.workers as w; from core.cli.main import main; calls = []; "
        "start = w.start_fork_server; "
        "w.start_fork_server = lambda s: calls.append('distributed' in sys.modules) or start(s); "
        f"code = main(['sweep', {str(spec)!r}, '--out', {str(tmp_path / 'out')!r}]); print(code, calls)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "2 [False]", (done.stdout, done.stderr[-2000:])


def test_identical_jobs_asked_for_by_two_clients_run_once(engine):
    job = CollectiveJob(preset("smoke", tasks=2, epochs=2, seed=7), threads=1)
    other = Client(engine.client.scheduler.address)
    try:
        mine = engine.submit(job)
        shared = other.submit(run_on_worker, job, engine.store, key=job.key)
        assert mine.result(timeout=300) == shared.result(timeout=300)
        assert mine.result()["reused"] is False  # computed once: a second computation would have found it on disk
    finally:
        other.close()


def _signature(event: object) -> tuple:
    return (type(event).__name__, getattr(event, "task", None), getattr(event, "epoch", None))


def test_every_event_of_a_job_on_a_worker_reaches_its_asker_in_order(engine, tmp_path):
    """Events travel in batches (core.jobs.cluster.EventBatches): the last batch is sent before the job returns, so
    the asker has every event of the job, in the order this process's run of the same job emits them."""
    job = CollectiveJob(preset("smoke", tasks=3, epochs=2, seed=13), threads=1)
    here: list[object] = []
    execute(job, JobStore.at(tmp_path), [here.append])
    there: list[object] = []
    engine.submit(job, listeners=[there.append]).result(timeout=300)
    time.sleep(1.0)  # a batch sent after the job ended would arrive after its listeners were let go: none must be
    assert [_signature(e) for e in there] == [_signature(e) for e in here]
    assert sum(isinstance(e, TaskFinished) for e in there) == job.config.tasks


def test_cancel_stops_a_job_no_one_else_wants_at_its_next_epoch(engine):
    job = CollectiveJob(preset("smoke", tasks=30, epochs=15, seed=11), threads=1)
    started = threading.Event()
    future = engine.submit(job, listeners=[lambda e: started.set() if isinstance(e, TaskStarted) else None])
    assert started.wait(300)
    assert engine.cancel(future) is True
    deadline = time.monotonic() + 60
    while engine.client.run_on_scheduler(lambda dask_scheduler: job.key in dask_scheduler.tasks):
        assert time.monotonic() < deadline, "the cancelled job kept running"
        time.sleep(0.2)
    run = engine.store.run_dir(job)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["finished_tasks"] < job.config.tasks  # stopped early: finished tasks are kept


def test_cancel_keeps_a_job_another_client_still_waits_for(engine):
    job = CollectiveJob(preset("smoke", tasks=3, epochs=2, seed=12), threads=1)
    other = Client(engine.client.scheduler.address)
    try:
        theirs = other.submit(run_on_worker, job, engine.store, key=job.key)
        mine = engine.submit(job)
        deadline = time.monotonic() + 30
        while len(engine.client.run_on_scheduler(wanted_by, job.key)) < 2:  # both requests have reached the scheduler
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert engine.cancel(mine) is False
        assert theirs.result(timeout=300)["reused"] is False
        assert JobStore.at(engine.store.root).run_finished(job)
    finally:
        other.close()


def test_the_same_fewshot_job_gives_the_same_numbers_in_this_process_and_on_a_worker(engine, short_run, tmp_path):
    from test_jobs import fewshot

    job = fewshot(short_run)
    local = JobStore.at(tmp_path / "local")
    execute(job, local)
    engine.submit(job).result(timeout=300)

    def numbers(result):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result["rows"]]

    assert numbers(engine.store.result(job)) == numbers(local.result(job))
    assert dataclasses.asdict(job)["threads"] == engine.threads


def test_a_job_waiting_for_a_worker_knows_how_many_jobs_are_ahead_of_it(engine):
    jobs = [CollectiveJob(preset("smoke", tasks=30, epochs=15, seed=20 + i), threads=1) for i in range(3)]
    running = [engine.submit(job) for job in jobs[:2]]
    deadline = time.monotonic() + 120
    processing = lambda dask_scheduler: sum(t.state == "processing" for t in dask_scheduler.tasks.values())  # noqa: E731
    while engine.client.run_on_scheduler(processing) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    waiting = engine.submit(jobs[2])
    while not engine.client.run_on_scheduler(wanted_by, waiting.key):  # the request has reached the scheduler
        time.sleep(0.05)
    try:
        assert engine.queue_position(waiting) == 1  # Dask gave it a busy worker: one job runs there before it
        assert engine.queue_position(running[0]) == 0
    finally:
        for future in running + [waiting]:
            engine.cancel(future)
