"""Where runs live and what a run folder may be called: the runs root, and names from links or forms resolved in it."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import LearngeneError
from core.names import clip

RUNS_ENV = "LEARNGENE_RUNS"
REPO = Path(__file__).resolve().parents[2]
RUN_NAME_MAX = 100
RUN_LINK_MAX = 255


def runs_root() -> Path:
    """Where runs live: $LEARNGENE_RUNS, else <repo>/runs."""
    env = os.environ.get(RUNS_ENV, "")
    return Path(env).expanduser() if env else REPO / "runs"


def check_run_name(name: str) -> None:
    """Refuse a run name (from a link or pasted settings) that cannot name a folder under the runs root."""
    if not name.isprintable() or len(name.encode("utf-8", "surrogatepass")) > RUN_LINK_MAX:
        raise LearngeneError(
            f"run {clip(name)!r} is not a folder name of the runs root: at most {RUN_LINK_MAX} bytes of printable "
            "characters; pick a run in the run menu"
        )
    if ".." in Path(name).parts or Path(name).is_absolute():
        raise LearngeneError(
            f"run {clip(name)!r} must be a folder name under the runs root, without '..' or a leading '/'"
        )


def resolve_run(root: Path, name: str) -> Path:
    """The run directory `name` under `root`, refusing absolute paths and escapes ('..', symlinks out)."""
    if not name:
        raise LearngeneError(f"no run named: pick a run under the runs root {root} in the run menu")
    check_run_name(name)
    try:
        base = root.resolve()
        target = (base / name).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise LearngeneError(
            f"run {clip(name)!r} cannot be opened ({exc.__class__.__name__}): pick a run in the run menu"
        ) from None
    if target == base or not target.is_relative_to(base):
        raise LearngeneError(
            f"run {clip(name)!r} resolves outside the runs root {root}: choose a run listed in the run menu"
        )
    return target


def new_run_dir(root: Path, name: str) -> Path:
    """Where the app trains a run called `name`: one folder name of printable characters directly under `root`."""
    name = name.strip()
    if not name:
        raise LearngeneError("the run name is empty: type a folder name such as fast-glyphs")
    if len(name) > RUN_NAME_MAX or len(name.encode("utf-8", "surrogatepass")) > 255:
        raise LearngeneError(
            f"the run name has {len(name):,} characters: use at most {RUN_NAME_MAX} (fewer for non-Latin letters)"
        )
    if not name.isprintable() or any(c in name for c in "/\\") or name in (".", ".."):
        raise LearngeneError(
            f"run name {clip(name)!r} must be one folder name in the runs root: printable characters, no '/' or '\\'"
        )
    return resolve_run(root, name)


def list_runs(root: Path) -> list[str]:
    """Names of the run folders directly under `root` (with a config.json), newest first; unreadable ones left out."""
    found = []
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    for path in entries:
        try:
            check_run_name(path.name)
            if (path / "config.json").is_file():
                found.append(((path / "config.json").stat().st_mtime, path.name))
        except (OSError, LearngeneError):
            continue
    return [name for _, name in sorted(found, reverse=True)]
