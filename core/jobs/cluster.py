"""Jobs on Dask distributed: an embedded LocalCluster sized to the machine, or an existing scheduler.

Each job is submitted under its own key, so identical jobs asked for by several clients run once. A job's events
travel as worker events on the job's topic; Cancel sets the job's stop event only when no other client still
wants the job, and the running job stops at its next check (Dask never interrupts a running task).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dask
from distributed import Client, Event, Future, LocalCluster, get_worker
from distributed.utils import get_mp_context

from core.errors import LearngeneError, Setting
from core.events import EpochEnded, Listener, TargetTaskFinished, check_stop
from core.jobs.execute import Job, Outcome, execute
from core.jobs.messages import from_message, to_message
from core.jobs.store import JobStore
from core.jobs.workers import forkserver_available, preload_fork_server, scheduler_address

DASHBOARD_PORT = 8787
INTERACTIVE = 10  # priority of a visitor's jobs: ahead of sweeps (0)
STOP_CHECK_S = 0.25  # a read is a round trip to the scheduler (about a millisecond)
STOP_WAIT_S = 60.0  # how long a canceller waits for the running job to reach its next stop check
EVENT_BATCH_S = 0.5  # a job's events reach the scheduler in batches at most this old (live charts redraw every 2 s)
# The settings of the workers a LocalCluster of ours starts: the nanny reads its pre-spawn variables when it is made,
# and hands WORKER_CONFIG to every worker it spawns, a worker restarted after a crash included.
NANNY_CONFIG = {"distributed.nanny.pre-spawn-environ": {}}
# How often the event loops of our cluster's processes wake for bookkeeping (Dask's defaults: 20 ms, 500 ms, 100 ms).
# At the defaults an idle 2-worker cluster used 45 ms of CPU a second in the process that holds its scheduler and
# nannies and 20 ms in each worker; with these, 9 and 3 (docs/benchmarks.md). They set how soon a blocked event loop
# is noticed, how often the dashboard's system charts move, and how soon a worker over its memory limit is stopped.
QUIET_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}
WORKER_CONFIG = {"distributed.worker.profile.enabled": False, **QUIET_CONFIG}


def topic_of(key: str) -> str:
    """The worker-event topic a job's events travel on."""
    return f"learngene-events-{key}"


def _stop_name(key: str) -> str:
    return f"learngene-stop-{key}"


class StopFlag:
    """The running job's `should_stop`: reads the job's stop event at most every STOP_CHECK_S (each read is a round
    trip), so that a cancelled job stops within its next epochs, not after a whole task of small ones."""

    def __init__(self, key: str) -> None:
        self.event = Event(_stop_name(key))
        self.next_check = 0.0
        self.stopped = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now >= self.next_check:
            self.next_check = now + STOP_CHECK_S
            self.stopped = self.event.is_set()
        return self.stopped


class EventBatches:
    """A running job's listener on a worker: sends its events to the job's topic as lists. The many small ones (an
    epoch ended, a target task finished: 30 a second in a `smoke` run) wait up to EVENT_BATCH_S for company; any
    other event (a task started or finished, a method's row, a note) goes at once with those before it. Each send
    wakes the worker's event loop, which then takes the GIL from the training thread: one send per event cost about
    3% of a worker's time, and the scheduler's process spent most of its CPU passing them on (docs/benchmarks.md)."""

    def __init__(self, topic: str) -> None:
        self.worker = get_worker()
        self.topic = topic
        self.pending: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, event: object) -> None:
        message = to_message(event)
        if message is None:
            return
        with self.lock:
            self.pending.append(message)
            first = len(self.pending) == 1
        if not isinstance(event, (EpochEnded, TargetTaskFinished)):
            self.flush()
        elif first:
            self.worker.loop.add_callback(self.worker.loop.call_later, EVENT_BATCH_S, self.flush)

    def flush(self) -> None:
        """Send the events not sent yet."""
        with self.lock:
            batch, self.pending = self.pending, []
        if batch:
            self.worker.log_event(self.topic, batch)


def run_on_worker(job: Job, store: JobStore, *after: object) -> dict:
    """The Dask task of a job: run it on this worker, publishing its events; `after` are jobs it waits for."""
    publish = EventBatches(topic_of(job.key))
    stop = StopFlag(job.key)
    check_stop(stop)  # cancelled before it started here: touch nothing (a canceller that saw no job running reads disk)
    try:
        return dataclasses.asdict(execute(job, store, [publish], stop))
    finally:
        publish.flush()


def wanted_by(key: str, dask_scheduler=None) -> list[str]:  # noqa: ANN001 - Dask passes its scheduler object
    """The ids of the clients that want a job now (run on the scheduler)."""
    task = dask_scheduler.tasks.get(key)
    return [] if task is None else sorted(client.client_key for client in task.who_wants)


def _placement(key: str, dask_scheduler=None) -> tuple[str | None, int]:  # noqa: ANN001 - Dask passes it
    """(the worker a job is assigned to, how many other jobs that worker holds); (None, jobs on the cluster) when
    the job waits at the scheduler itself."""
    task = dask_scheduler.tasks.get(key)
    if task is not None and task.processing_on is not None:
        worker = task.processing_on
        return worker.address, sum(other.key != key for other in worker.processing)
    return None, sum(
        t.state in ("processing", "queued", "no-worker") for k, t in dask_scheduler.tasks.items() if k != key
    )


def _executing(dask_worker=None) -> list[str]:  # noqa: ANN001 - Dask passes its worker object
    return [str(task.key) for task in dask_worker.state.executing]


def _missing(paths: list[str]) -> list[str]:
    return [p for p in paths if not Path(p).exists()]


def _free_port(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _start_method() -> str:
    """How our nannies start workers: forked from a fork server that has imported torch once, where the platform has
    one (Linux, macOS); else spawned, each worker importing everything itself."""
    if not forkserver_available():
        return "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # Dask sets its own preload list here, once per process; ours replaces it
    preload_fork_server()
    return "forkserver"


def local_cluster(workers: int | None = None, dashboard: bool = True) -> LocalCluster:
    """Worker processes with one task slot each (default: one per core), torch training at full speed in them.

    Dask's nanny writes its pre-spawn variables (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_, ...) into this process's
    own environment before it spawns a worker, where they would change every later subprocess and thread default.
    None are needed: a job sets torch's thread count itself, and MALLOC_TRIM_THRESHOLD_ makes torch training in a
    worker about 1.6x slower (docs/scale-out.md). So the list is empty, and the environment is restored after the
    start (a worker restarted later still leaves the nanny's PYTHONHASHSEED behind). The workers' statistical
    profiler (for the dashboard's Profile page) is off: it samples the training thread's stack every 10 ms, under the
    GIL that torch's many small ops also need; with it a sweep took 1.02x (2 workers) and 1.06x (1 worker) as long
    (docs/benchmarks.md). It is handed to the nanny as its workers' own config, so a worker restarted after a crash
    has it too (a `dask.config.set` around the start reaches only the first workers).

    The first workers are forked from a fork server that imported torch once (`_start_method`), instead of each
    spawned worker importing Dask and torch itself: they share torch's pages with the fork server, 105 MiB PSS per
    worker after a training step against 257 spawned (plus 127 MiB for the fork server once), and are ready for a
    first job 1.1x sooner on an idle 2-core machine (`benchmarks/bench_workers.py`). A forked worker has the fork
    server's environment, so this process's environment at the start is handed to each worker; a worker restarted
    after a crash is spawned as Dask does by default.
    """
    address = f":{DASHBOARD_PORT}" if dashboard and _free_port(DASHBOARD_PORT) else ":0"  # the scheduler serves HTTP
    before = dict(os.environ)
    method = _start_method()
    try:
        with dask.config.set({**NANNY_CONFIG, **QUIET_CONFIG, "distributed.worker.multiprocessing-method": method}):
            return LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=address,
                silence_logs=logging.ERROR,
                config=WORKER_CONFIG,
                env=before,
            )
    finally:
        os.environ.clear()
        os.environ.update(before)


@dataclass
class Engine:
    """A client of a Dask cluster with the job store its jobs write to; `threads` is torch's count per job."""

    client: Client
    store: JobStore
    threads: int
    cluster: LocalCluster | None = None
    _listeners: dict[str, list[Listener]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def dashboard(self) -> str | None:
        """The address of Dask's dashboard, if it has one."""
        with contextlib.suppress(Exception):
            return self.client.dashboard_link
        return None

    def submit(
        self, job: Job, *, after: Iterable[Future] = (), listeners: Iterable[Listener] = (), priority: int = 0
    ) -> Future:
        """Ask for a job; an identical job already asked for by anyone is shared, not run twice."""
        listeners = list(listeners)
        if listeners:
            self._follow(job.key, listeners)
        Event(_stop_name(job.key), client=self.client).clear()
        resources = {"GPU": 1} if job.device.startswith("cuda") else None
        future = self.client.submit(
            run_on_worker,
            job,
            self.store,
            *after,
            key=job.key,
            priority=priority,
            resources=resources,
        )
        if listeners:
            future.add_done_callback(lambda f: self._unfollow(job.key, listeners))
        return future

    def cancel(self, future: Future) -> bool:
        """Drop this client's interest in a job, and stop it when no other client wants it; returns whether it stops.

        When others still wait, the future is only released (Dask's cancel leaves a shared key alone, and no callback
        of the released future runs); else the stop event stops a running job at its next check, and Dask's cancel
        keeps a queued one from starting.
        """
        key = future.key
        if set(self.client.run_on_scheduler(wanted_by, key)) - {self.client.id}:
            future.release()
            return False
        Event(_stop_name(key), client=self.client).set()
        self.client.cancel(future)
        return True

    def queue_position(self, future: Future) -> int:
        """How many jobs are ahead of this one: 0 when it runs, else the jobs its worker holds (or the cluster, while
        it waits for a worker)."""
        worker, others = self.client.run_on_scheduler(_placement, future.key)
        if worker is None:
            return others
        running = self.client.run(_executing, workers=[worker]).get(worker, [])
        return 0 if future.key in running else others

    def wait_stopped(self, key: str, timeout: float = STOP_WAIT_S) -> bool:
        """Wait until no worker runs the job `key` any more; True when none does. A cancelled job goes on until its
        next stop check and then removes what an unstarted run wrote, so its asker waits for that before saying what
        is left on disk; a job that a worker starts after its stop event was set stops before touching anything
        (`run_on_worker`)."""
        deadline = time.monotonic() + timeout
        while any(key in keys for keys in self.client.run(_executing).values()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def outcome(self, future: Future) -> Outcome:
        """Wait for a job and return its outcome."""
        return Outcome(**future.result())

    def check_workers_see(self, paths: Iterable[str]) -> None:
        """Refuse, in one line, a cluster whose workers cannot see the job store or the data (they share no disk)."""
        paths = [str(p) for p in paths if p]
        missing = {w: gone for w, gone in self.client.run(_missing, paths).items() if gone}
        if missing:
            worker, gone = next(iter(missing.items()))
            raise LearngeneError(
                f"{len(missing)} Dask worker(s) cannot see {', '.join(gone)} (first: {worker}): share that folder at "
                "the same path on every worker machine (a network file system), or run without ",
                Setting("scheduler"),
            )

    def close(self) -> None:
        """Close the client, and the embedded cluster if this engine started one."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _follow(self, key: str, listeners: list[Listener]) -> None:
        with self._lock:
            followers = self._listeners.setdefault(key, [])
            first = not followers
            followers.extend(listeners)
        if first:
            self.client.subscribe_topic(topic_of(key), lambda event: self._deliver(key, event[1]))

    def _deliver(self, key: str, messages: list[dict]) -> None:
        with self._lock:
            listeners = list(self._listeners.get(key, ()))
        for message in messages:
            event = from_message(message)
            for listener in listeners:
                with contextlib.suppress(Exception):
                    listener(event)

    def _unfollow(self, key: str, listeners: list[Listener]) -> None:
        with self._lock:
            followers = [x for x in self._listeners.get(key, []) if all(x is not y for y in listeners)]
            if followers:
                self._listeners[key] = followers
                return
            self._listeners.pop(key, None)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(topic_of(key))


def start_engine(
    store: JobStore,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    dashboard: bool = True,
) -> Engine:
    """Connect to `scheduler` (else $DASK_SCHEDULER_ADDRESS), or start a LocalCluster of `workers` processes.

    On a local cluster, workers x torch threads = cores unless `threads` says otherwise; on another cluster a job
    uses `threads` (default 1) per task slot.
    """
    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise LearngeneError(
                f"no Dask scheduler answers at {address} ({str(exc).splitlines()[0] if str(exc) else 'timeout'}): "
                "start one with `dask scheduler`, or leave ",
                Setting("scheduler"),
                " out to use this machine",
            ) from None
        return Engine(client, store, job_threads(address, workers, threads))
    cluster = local_cluster(workers, dashboard)
    return Engine(Client(cluster), store, job_threads(None, workers, threads), cluster)


def job_threads(address: str | None, workers: int | None, threads: int | None) -> int:
    """Torch threads per job: `threads` if given; on a local cluster cores / workers; on another cluster 1."""
    if threads is not None:
        return threads
    if address is not None:
        return 1
    cores = os.cpu_count() or 1
    return max(1, cores // (workers or cores))
