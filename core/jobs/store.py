"""Where finished jobs lie, by key: a collective job's run folder, a few-shot job's result file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.atomic import write_json
from core.collective.runs import CONFIG, open_run
from core.errors import LearngeneError
from core.jobs.spec import CollectiveJob, FewShotJob

RUNS = "runs"
RESULTS = "results"


@dataclass(frozen=True)
class JobStore:
    """Where job outputs lie: runs/<name or key>/ for collective jobs, results/<key>.json for few-shot jobs."""

    runs: Path
    results: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> JobStore:
        """The store in folder `root` (absolute, so workers in other folders find the same files)."""
        root = Path(root).expanduser().resolve()
        return cls(root / RUNS, root / RESULTS)

    @property
    def root(self) -> Path:
        """The folder that holds both parts (a sweep's --out)."""
        return self.runs.parent

    def run_dir(self, job: CollectiveJob) -> Path:
        """The run folder of a collective job."""
        return self.runs / (job.name or job.key)

    def result_path(self, job: FewShotJob) -> Path:
        """The result file of a few-shot job."""
        return self.results / f"{job.key}.json"

    def run_finished(self, job: CollectiveJob) -> bool:
        """Whether the job's run holds every task (a damaged run counts as unfinished: training checks it)."""
        folder = self.run_dir(job)
        if not (folder / CONFIG).is_file():
            return False
        try:
            return open_run(folder).complete
        except LearngeneError:
            return False

    def result(self, job: FewShotJob) -> dict[str, Any] | None:
        """The stored result of a few-shot job, or None when it has not finished."""
        try:
            return json.loads(self.result_path(job).read_text())
        except (OSError, ValueError):
            return None

    def save_result(self, job: FewShotJob, result: dict[str, Any]) -> Path:
        """Write a few-shot job's result under its key (atomically: a reader sees all of it or none)."""
        path = self.result_path(job)
        write_json(path, dict(result, job_key=job.key))
        return path
