"""User-facing errors as data: what went wrong, and the settings or actions that fix it, for each audience to word.

Core never writes a command-line option or a page field into a message. A message is a tuple of parts: plain text,
`Setting`s (a setting the user can change, by its id) and `Action`s (something the user does, by its id). The
command line (core.cli.messages) renders a setting as its option and an action as the command; the explorer page
(explorer.widgets.wording) renders a setting as its field and an action as its button or folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Every setting a message may name: id -> its plain name (the audience-free wording, used by str()).
SETTINGS: dict[str, str] = {
    "tasks": "number of tasks",
    "epochs": "epochs",
    "target_epochs": "epochs per target task",
    "tau": "tau",
    "seed": "seed",
    "extract_after": "extraction task",
    "run_dir": "run directory",
    "root": "data root",
    "shot": "shot",
    "way": "way",
    "query": "query images per class",
    "task": "task",
    "layers": "layers",
    "top_k": "window length",
    "threshold": "threshold",
    "front_depth": "front depth",
    "threads": "thread count",
    "device": "device",
    "preset": "preset",
    "out": "output folder",
    "scheduler": "Dask scheduler",
    "criterion": "criterion",
}
# Every action a message may ask for: id -> its plain wording ({arg} is the action's argument).
ACTIONS: dict[str, str] = {
    "resume": "resume it",
    "train": "train the run {arg}",
    "open_run": "open the folder the collective stage wrote",
    "pick_learngene": "give a run or a learngene file",
    "data_root": "give that folder as the data root",
    "no_data_root": "give a data root",
    "other_root": "give another data root",
    "image_root": "give a data root with one subfolder per class",
    "use_as_root": "give it as the data root",
    "data_folder": "the data root's {arg} folder",
    "download": "download {arg}",
    "redownload": "download it again",
    "fresh_copy": "get a fresh copy",
    "reinstall_fonts": "reinstall matplotlib",
    "extract": "the extraction",
    "list_datasets": "the list of datasets",
}


@dataclass(frozen=True)
class Setting:
    """A setting that fixes a problem, by id (a key of SETTINGS), with the value to give it if there is one."""

    id: str
    value: str = ""

    def __post_init__(self) -> None:
        if self.id not in SETTINGS:
            raise ValueError(f"unknown setting id {self.id!r}: add it to core.errors.SETTINGS")


@dataclass(frozen=True)
class Action:
    """Something the user does to fix a problem, by id (a key of ACTIONS), with its argument (a path, a file)."""

    id: str
    arg: str = ""

    def __post_init__(self) -> None:
        if self.id not in ACTIONS:
            raise ValueError(f"unknown action id {self.id!r}: add it to core.errors.ACTIONS")


Part = str | Setting | Action
Message = tuple[Part, ...]


def render(parts: Iterable[Part], setting: Callable[[Setting], str], action: Callable[[Action], str]) -> str:
    """One line from a message's parts, each setting and action worded by the audience's function."""
    words = {Setting: setting, Action: action}
    return "".join(words[type(p)](p) if type(p) in words else str(p) for p in parts)


def plain(parts: Iterable[Part]) -> str:
    """The audience-free wording: settings and actions by their plain names (logs, str())."""
    return render(
        parts, lambda s: SETTINGS[s.id] + (f" {s.value}" if s.value else ""), lambda a: ACTIONS[a.id].format(arg=a.arg)
    )


class LearngeneError(Exception):
    """A problem the user can fix, as message parts; the CLI prints it as one line and exits with code 2."""

    def __init__(self, *parts: Part) -> None:
        super().__init__(*parts)

    @property
    def parts(self) -> Message:
        """The message's parts: text, settings and actions."""
        return self.args

    @property
    def fixes(self) -> tuple[Setting | Action, ...]:
        """The settings and actions the message names, in order: what the user can change to fix it."""
        return tuple(p for p in self.args if isinstance(p, (Setting, Action)))

    def __str__(self) -> str:
        return plain(self.args)


def parts_of(exc: BaseException) -> Message:
    """An exception's message as parts, so that a wrapping error keeps its settings and actions."""
    return exc.parts if isinstance(exc, LearngeneError) else (str(exc),)


def check_all(checks: Iterable[tuple]) -> None:
    """Raise LearngeneError with the message parts of the first failed (ok, *parts) check."""
    for ok, *parts in checks:
        if not ok:
            raise LearngeneError(*parts)
