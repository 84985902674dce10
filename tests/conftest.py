"""Shared fixtures: a private dataset cache per test session, and one trained `smoke` run."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Keep the glyph cache out of the user's home: one fresh cache per test session."""
    if "LEARNGENE_TEST_KEEP_CACHE" not in os.environ:
        os.environ["LEARNGENE_CACHE"] = tempfile.mkdtemp(prefix="learngene-test-cache-")


def shared_data() -> Path | None:
    """Where the real datasets live: $LEARNGENE_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("LEARNGENE_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `smoke` collective run on glyphs (trained once per session)."""
    from core.collective import train_collective
    from core.config import preset

    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    train_collective(preset("smoke"), run_dir)
    return run_dir
