"""Core's messages for the command line: a setting reads as its option, an action as the option or command doing it."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import SETTINGS, Action, LearngeneError, Part, Setting, render

# action id -> what to type ({arg} is the action's argument)
COMMANDS: dict[str, str] = {
    "resume": "pass --resume",
    "train": "`learngene collective --run-dir {arg}`",
    "open_run": "pass the folder `learngene collective` wrote",
    "pick_learngene": "pass --run-dir DIR (a run) or --learngene FILE",
    "data_root": "pass --root DIR or set LEARNGENE_DATA=DIR",
    "no_data_root": "set LEARNGENE_DATA or pass --root",
    "other_root": "pass another --root",
    "image_root": "pass --root DIR, a folder with one subfolder per class",
    "use_as_root": "pass it as --root DIR or set LEARNGENE_DATA=DIR",
    "data_folder": "DIR/{arg}",
    "download": "pass --download to fetch {arg}",
    "redownload": "run again with --download",
    "fresh_copy": "get a fresh copy (or use --download)",
    "reinstall_fonts": "reinstall it with `pip install --force-reinstall matplotlib`",
    "extract": "`learngene extract`",
    "list_datasets": "`learngene datasets`",
}
# setting id -> its option's name where the two differ (`individual --epochs` sets the epochs per target task)
OPTION_NAMES: dict[str, str] = {"target_epochs": "epochs"}


def option(setting: Setting) -> str:
    """The option that sets `setting` (`--run-dir` for run_dir), followed by its value if it has one."""
    if setting.id not in SETTINGS:
        raise KeyError(setting.id)
    flag = "--" + OPTION_NAMES.get(setting.id, setting.id).replace("_", "-")
    return f"{flag} {setting.value}" if setting.value else flag


def command(action: Action) -> str:
    """What to type to do `action`."""
    return COMMANDS[action.id].format(arg=action.arg)


def words(parts: Iterable[Part]) -> str:
    """A message's parts as one command-line line."""
    return render(parts, option, command)


def line(error: LearngeneError) -> str:
    """The line the command line prints for `error`."""
    return words(error.parts)
