"""Core's messages in page terms: the same error reads as buttons and fields here, as options on the command line.

Core writes one line per problem for the shell ("lower --shot", "pass --root DIR"). The page has no shell, so each
known command-line phrase is rewritten into what a student can do on the page; any option left over is named by
the field it corresponds to, never as a flag.
"""

from __future__ import annotations

import re

from core.data.datasets import resolve_root

# (pattern, page wording), applied in order; {data} is the page's data folder.
PHRASES: tuple[tuple[str, str], ...] = (
    (r"pass the folder `learngene collective` wrote", "choose a run from the run menu"),
    (r"(create one|train it) with `learngene collective --run-dir [^`]*`", r"train it in panel 1 (Train / resume)"),
    (
        r"(resume it|rerun the collective stage|rerun its last task|delete it and rerun) with --resume",
        r"\1 in panel 1: type the run's name and press Train / resume",
    ),
    (r"pass --resume to continue it", "press Train / resume to continue it"),
    (r"choose another --run-dir", "choose another run name"),
    (
        r"pass --download to fetch (\S+) \(about 170 MB\) into DIR/cifar100, or put that file or its extracted (\S+) "
        r"folder there yourself; then pass --root DIR or set LEARNGENE_DATA=DIR",
        r"put \1 (about 170 MB) or its extracted \2 folder into {data}/cifar100, then reload the page",
    ),
    (r"into DIR/(\w+), then pass --root DIR or set LEARNGENE_DATA=DIR", r"into {data}/\1, then reload the page"),
    (
        r"then pass (it as )?--root DIR or set LEARNGENE_DATA=DIR",
        "then put it into the page's data folder {data} and reload the page",
    ),
    (r"pass --root DIR or set LEARNGENE_DATA=DIR", "put it into the page's data folder {data}"),
    (
        r"(set LEARNGENE_DATA or pass --root|pass --root DIR[^)]*\) or set LEARNGENE_DATA)",
        "the page has no data folder",
    ),
    (r"pass --root DIR, a folder with one subfolder per class", "the page's data folder needs one subfolder per class"),
    (r"or pass another --root", "or start the page with another data folder"),
    (r"(delete it and )?run again with --download", r"\1put a fresh copy into the data folder"),
    (r" \(or use --download\)", ""),
    (
        r"lower --images-per-class",
        "choose a preset that needs fewer images per class, or a dataset with more (panel 1)",
    ),
    (r"lower --shot or --query so they sum to at most (\S+)", r"lower shot: shot and test images together get \1"),
    (r"lower --way", "lower way"),
    (r"pass e\.g\. --tau", "use for example τ ="),
    (
        r"also pass the run it came from \(--run-dir [^)]*\)",
        "pick the run it came from in the run menu",
    ),
    (r"use --device cpu", "the page trains on the CPU"),
    (r"use --preset fast", "use the fast preset"),
    (r"give only one of --layers, --threshold and --top-k", "choose layers either by hand or by the threshold"),
    (r"reinstall it with `pip install --force-reinstall matplotlib`", "reinstall matplotlib where this page runs"),
)
FIELDS = {
    "--tasks": "the number of tasks",
    "--epochs": "epochs",
    "--tau": "τ",
    "--seed": "the seed",
    "--extract-after": "the extraction task",
    "--run-dir": "the run name",
    "--root": "the data folder",
    "--shot": "shot",
    "--way": "way",
    "--query": "test images per class",
    "--task": "the task",
    "--layers": "the layer choice",
    "--top-k": "the window length",
    "--threshold": "the threshold",
    "--front-depth": "the front depth",
    "--baselines": "the other strategies",
    "--download": "a download",
    "--resume": "Train / resume",
}
NO_DATA = "the data folder (this page was started without LEARNGENE_DATA)"
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
COMMAND = re.compile(r"`learngene [^`]*`")


def page_terms(message: str) -> str:
    """`message` (one of core's lines) with command-line phrases replaced by what to do on the page."""
    data = resolve_root(None)
    text = message
    for pattern, wording in PHRASES:
        text = re.sub(pattern, wording.replace("{data}", str(data) if data else NO_DATA), text)
    text = COMMAND.sub("the command line", text)
    return FLAG.sub(lambda m: FIELDS.get(m.group(0), m.group(0)[2:].replace("-", " ")), text)
