"""Core's messages in page terms: a setting reads as the page's field and where it is, an action as its button.

Core's errors carry the settings and actions that fix them as data (core.errors); the command line words them as
options, this page as fields, menus and buttons. Nothing here reads a message's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.data.datasets import resolve_root
from core.errors import Action, LearngeneError, Part, Setting, render

# setting id -> (the field's name, where it is on the page)
FIELDS: dict[str, tuple[str, str]] = {
    "tasks": ("the preset's number of tasks", "panel 1"),
    "epochs": ("epochs", "panel 1"),
    "target_epochs": ("epochs per target task", "set by the individual preset"),
    "tau": ("τ", "panel 2"),
    "seed": ("the seed", "set by the preset in panel 1"),
    "extract_after": ("the extraction task", "set by the preset in panel 1"),
    "run_dir": ("run", "the run menu, or a new run's name in panel 1"),
    "root": ("data folder", "LEARNGENE_DATA when the page starts"),
    "shot": ("shot", "panel 3"),
    "way": ("way", "panel 3"),
    "query": ("test images per class", "set by the individual preset"),
    "task": ("source task", "the run's last finished task on this page"),
    "layers": ("layers", "panel 2"),
    "top_k": ("window length", "panel 2"),
    "threshold": ("threshold", "panel 2"),
    "front_depth": ("front depth", "set by the individual preset"),
    "threads": ("threads", "the run's own count on this page"),
    "device": ("device", "this page trains on the CPU"),
    "preset": ("preset", "panel 1"),
    "out": ("output folder", "the export folder in panel 4"),
    "scheduler": ("Dask scheduler", "DASK_SCHEDULER_ADDRESS when the page starts"),
    "criterion": ("criterion", "the map's gradient / open-world toggle in panel 2"),
}
# action id -> what to do on the page ({arg}: the action's argument; {data}: the page's data folder)
BUTTONS: dict[str, str] = {
    "resume": "press Train / resume in panel 1",
    "train": "Train / resume in panel 1",
    "open_run": "choose a run from the run menu",
    "pick_learngene": "choose a run from the run menu",
    "data_root": "reload the page (its data folder: {data})",
    "no_data_root": "this page was started without LEARNGENE_DATA",
    "other_root": "start the page with another LEARNGENE_DATA",
    "image_root": "the page's data folder ({data}) needs one subfolder per class",
    "use_as_root": "start the page with LEARNGENE_DATA set to that folder",
    "data_folder": "{data}/{arg}",
    "download": "fetch {arg}",
    "redownload": "put a fresh copy into the data folder ({data})",
    "fresh_copy": "put a fresh copy into the data folder ({data})",
    "reinstall_fonts": "reinstall matplotlib where this page runs",
    "extract": "Run in panel 3, which extracts the learngene from the run",
    "list_datasets": "the dataset menu in panel 1",
}
# ... where the page was started without a data folder
WITHOUT_DATA: dict[str, str] = {
    **BUTTONS,
    "data_root": "start the page with LEARNGENE_DATA set to DIR",
    "data_folder": "a folder DIR's {arg} subfolder",
    "image_root": "start the page with LEARNGENE_DATA set to a folder with one subfolder per class",
    "redownload": "put a fresh copy there",
}


def field(setting: Setting, placed: bool = True) -> str:
    """The page field that sets `setting`, its value if the message gives one, and (if `placed`) where it is."""
    name, where = FIELDS[setting.id]
    text = f"{name} {setting.value}" if setting.value else name
    return f"{text} ({where})" if placed else text


def button(action: Action, data: Path | None = None) -> str:
    """What to do on the page for `action`."""
    return (BUTTONS if data is not None else WITHOUT_DATA)[action.id].format(arg=action.arg, data=data)


def page_words(parts: Iterable[Part]) -> str:
    """A message's parts as one line in page terms."""
    data, seen = resolve_root(None), set()

    def once(setting: Setting) -> str:  # where a field is, said the first time the line names it
        placed = setting.id not in seen
        seen.add(setting.id)
        return field(setting, placed)

    return render(parts, once, lambda action: button(action, data))


def page_line(error: LearngeneError) -> str:
    """The line the page shows for `error`."""
    return page_words(error.parts)
