"""A sweep's TOML spec: a grid of collective runs and a grid of few-shot settings evaluated on every run.

`[collective]` takes any collective config field plus `preset`, `root`, `device`; `[individual]` any individual
config field plus `preset`, the selection options (`layers`, `threshold`, `top_k`, `tau`, `absolute`, `criterion`,
`aggregation`, `task`), `way`, `shot`, `query`, `tasks`, `methods`, `sizes`, `windows`, `prefixes`, `target_dataset`,
`target_root`, `invert`. A list is a grid axis, except where the field itself holds a list (`methods`, `widths`,
`head_hidden`, ...), which takes a list of lists as its axis. Every problem is one line naming the key.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from core.collective.config import PRESETS, CollectiveConfig, preset
from core.errors import LearngeneError, Part, parts_of
from core.individual.config import INDIVIDUAL_PRESETS, IndividualConfig, individual_preset
from core.individual.targets import TARGET_DATASETS, TargetSource
from core.jobs.spec import METHOD_FAMILIES, CollectiveJob, FewShotJob, SelectionRule, data_root

COLLECTIVE_EXTRA = ("preset", "root", "device")
SELECTION = tuple(f.name for f in dataclasses.fields(SelectionRule))
INDIVIDUAL_EXTRA = (
    "preset",
    "task",
    "way",
    "shot",
    "tasks",
    "methods",
    "sizes",
    "windows",
    "prefixes",
    "baselines",
    "target_dataset",
    "target_root",
    "invert",
) + SELECTION
LIST_FIELDS = {"methods", "widths", "pool_after", "hidden", "widening", "head_hidden", "front_widths", "front_pools"}
SECTIONS = ("collective", "individual")


@dataclass(frozen=True)
class Setting:
    """One point of a grid: the grid fields' values (for the tables) and every value the point sets."""

    grid: tuple[tuple[str, Any], ...]
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SweepSpec:
    """The parsed spec: the collective grid and the individual grid, each a list of settings."""

    path: str
    collective: tuple[Setting, ...]
    individual: tuple[Setting, ...]

    @property
    def grid_fields(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Names of the collective and the individual grid axes."""
        return tuple(n for n, _ in self.collective[0].grid), tuple(n for n, _ in self.individual[0].grid)


def _fail(where: str, *message: Part) -> LearngeneError:
    return LearngeneError(f"{where}: ", *message)


def _is_axis(name: str, value: object) -> bool:
    if name in LIST_FIELDS:
        return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)
    return isinstance(value, list)


def _grid(section: dict[str, Any], where: str) -> tuple[Setting, ...]:
    axes = [(name, value) for name, value in section.items() if _is_axis(name, value)]
    for name, value in axes:
        if not value:
            raise _fail(f"{where}.{name}", "an empty list makes an empty grid: give at least one value")
    fixed = tuple((name, value) for name, value in section.items() if not _is_axis(name, value))
    settings = []
    for combination in itertools.product(*(value for _, value in axes)):
        grid = tuple((name, v) for (name, _), v in zip(axes, combination))
        settings.append(Setting(grid, fixed + grid))
    return tuple(settings)


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def collective_config(values: dict[str, Any], where: str) -> CollectiveConfig:
    """The collective config of one grid point, checked (unknown keys and bad values name themselves)."""
    fields = {f.name for f in dataclasses.fields(CollectiveConfig)}
    settings = {k: _tuples(v) for k, v in values.items() if k not in COLLECTIVE_EXTRA}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", "unknown key: use a collective config field, preset, root or device")
    name = values.get("preset", "fast")
    if name not in PRESETS:
        raise _fail(f"{where}.preset", f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}")
    merged = dict(PRESETS[name].as_dict(), **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()})
    try:
        CollectiveConfig.from_dict(merged)
        return preset(name, **settings)
    except (LearngeneError, TypeError) as exc:
        raise _fail(where, *parts_of(exc)) from None


def individual_config(values: dict[str, Any], where: str) -> IndividualConfig:
    """The individual config of one grid point, checked."""
    fields = {f.name for f in dataclasses.fields(IndividualConfig)}
    settings = {k: _tuples(v) for k, v in values.items() if k not in INDIVIDUAL_EXTRA}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", "unknown key: use an individual config field or a sweep option")
    name = values.get("preset", "fast")
    if name not in INDIVIDUAL_PRESETS:
        raise _fail(f"{where}.preset", f"unknown preset {name!r}: choose one of {', '.join(INDIVIDUAL_PRESETS)}")
    defaults = INDIVIDUAL_PRESETS[name]
    for key, value in settings.items():
        if not _fits(value, getattr(defaults, key), key):
            raise _fail(f"{where}.{key}", f"{value!r} has the wrong type (like {getattr(defaults, key)!r})")
    try:
        return individual_preset(name, **settings)
    except (LearngeneError, TypeError) as exc:
        raise _fail(where, *parts_of(exc)) from None


def _fits(value: object, default: object, name: str) -> bool:
    if default is None or name in ("front_depth", "front_widths", "front_pools"):
        return value is None or isinstance(value, (int, tuple))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _check_options(values: dict[str, Any], where: str) -> None:
    """The sweep options of the individual section: types and values."""
    counts = {"way": (2, 1000), "shot": (1, 10_000), "tasks": (1, 10_000), "query": (1, 100_000), "task": (0, 10**6)}
    for name, (low, high) in counts.items():
        value = values.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise _fail(f"{where}.{name}", f"{value!r} is not a whole number in {low}..{high}")
    for name in ("sizes", "windows", "prefixes", "baselines", "absolute"):
        if name in values and not isinstance(values[name], bool):
            raise _fail(f"{where}.{name}", f"{values[name]!r} is not true or false")
    methods = values.get("methods")
    if methods is not None:
        wrong = [m for m in methods if m not in METHOD_FAMILIES] if isinstance(methods, list) else [methods]
        if wrong or not methods:
            raise _fail(
                f"{where}.methods",
                f"{wrong[0] if wrong else '[]'!r} is not a method: choose from {', '.join(METHOD_FAMILIES)}",
            )
    target = values.get("target_dataset")
    if target is not None and target not in TARGET_DATASETS:
        raise _fail(
            f"{where}.target_dataset", f"unknown target dataset {target!r}: choose {', '.join(TARGET_DATASETS)}"
        )


def parse_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep spec; every grid point's configs are built, so a bad value fails before any job runs."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LearngeneError(f"cannot read the sweep spec {path} ({exc.strerror}): check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LearngeneError(f"{path} is not valid TOML ({exc}): fix the line it names") from None
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise _fail(f"{path} [{unknown[0]}]", "unknown section: a spec has [collective] and [individual]")
    missing = [s for s in SECTIONS if not isinstance(doc.get(s), dict)]
    if missing:
        raise _fail(str(path), f"the [{missing[0]}] section is missing")
    collective = _grid(doc["collective"], "collective")
    individual = _grid(doc["individual"], "individual")
    for setting in collective:
        collective_config(dict(setting.values), "collective")
    for setting in individual:
        values = dict(setting.values)
        _check_options(values, "individual")
        individual_config(values, "individual")
    return SweepSpec(str(path), collective, individual)


def collective_jobs(spec: SweepSpec, threads: int) -> list[CollectiveJob]:
    """One collective job per point of the collective grid."""
    jobs = []
    for setting in spec.collective:
        values = dict(setting.values)
        config = collective_config(values, "collective")
        root = data_root(config.dataset, values.get("root"))
        jobs.append(CollectiveJob(config, threads, root, values.get("device", "cpu")))
    return jobs


def fewshot_job(setting: Setting, run_dir: str, run_id: str, threads: int, device: str, root: str | None) -> FewShotJob:
    """The few-shot job of one individual grid point on one collective run."""
    values = dict(setting.values)
    target = TargetSource()
    if values.get("target_dataset") is not None:
        target = TargetSource(values["target_dataset"], values.get("target_root"), values.get("invert", "auto"))
    methods = values.get("methods")
    return FewShotJob(
        run_dir=run_dir,
        run_id=run_id,
        config=individual_config(values, "individual"),
        selection=SelectionRule(**{k: values[k] for k in SELECTION if k in values}),
        target=target,
        way=values.get("way"),
        shot=values.get("shot"),
        query=values.get("query"),
        tasks=values.get("tasks"),
        baselines=values.get("baselines", False),
        sizes=values.get("sizes", False),
        windows=values.get("windows", False),
        prefixes=values.get("prefixes", False),
        methods=None if methods is None else tuple(methods),
        task=values.get("task"),
        root=root,
        device=device,
        threads=threads,
    )
