"""All user-facing state of the explorer in one typed object: JSON export/import and Voila URL query parameters."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from core.collective.config import PRESETS
from core.collective.run_folders import check_run_name
from core.data.datasets import DATASETS
from core.errors import LearngeneError, check_all

RUN_ENV = "LEARNGENE_RUN"
TAU_RANGE = (1e-14, 10.0)
TAU_DIGITS = 3  # tau is shown, linked and saved with three significant digits
VIEWS = ("task", "epoch")
MODES = ("finetune", "freeze")
COLOUR_SCALES = ("fit", "fixed")
MAP_CRITERIA = ("paper", "transfer")


@dataclass(frozen=True)
class Settings:
    """One view of the explorer: which run, criterion and selection, and the few-shot task setup.

    `run` is a run directory name relative to the runs root ("" means: pick the newest run);
    `tau` None means the run's own tau; `layers` empty means "selected by the threshold rule";
    `colour_scale` "fit" stretches the map's colours over its values, "fixed" keeps them at 0 to 1 while tau moves;
    `criterion` is what the map shows and selects by: "paper" (gradient) or "transfer" (open-world error).
    """

    run: str = ""
    tau: float | None = None
    absolute: bool = False
    view: str = "task"
    threshold: float | None = None
    layers: tuple[str, ...] = ()
    way: int = 5
    shot: int = 1
    target_tasks: int = 20
    mode: str = "finetune"
    baselines: bool = False
    dataset: str = "glyphs"
    preset: str = "fast"
    colour_scale: str = "fit"
    criterion: str = "paper"

    def validate(self) -> Settings:
        """Return self, or raise LearngeneError naming the first bad value and its valid range."""
        checks = [
            (
                self.tau is None or (math.isfinite(self.tau) and TAU_RANGE[0] <= self.tau <= TAU_RANGE[1]),
                f"tau {self.tau} is out of range: use a value from 1e-14 to 10",
            ),
            (self.view in VIEWS, f"view {self.view!r} is unknown: use 'task' or 'epoch'"),
            (
                self.threshold is None or (math.isfinite(self.threshold) and 0 <= self.threshold <= 1),
                f"threshold {self.threshold} is out of range: use a fraction from 0 to 1",
            ),
            (
                all(isinstance(n, str) and n.isidentifier() for n in self.layers),
                f"layers {list(self.layers)} are not layer names: use names such as conv2,conv3",
            ),
            (2 <= self.way <= 20, f"way {self.way} is out of range: use 2 to 20 classes per target task"),
            (1 <= self.shot <= 100, f"shot {self.shot} is out of range: use 1 to 100 images per class"),
            (1 <= self.target_tasks <= 100, f"target tasks {self.target_tasks} is out of range: use 1 to 100"),
            (self.mode in MODES, f"mode {self.mode!r} is unknown: use 'finetune' or 'freeze'"),
            (self.dataset in DATASETS, f"dataset {self.dataset!r} is unknown: use one of {', '.join(DATASETS)}"),
            (self.preset in PRESETS, f"preset {self.preset!r} is unknown: use one of {', '.join(PRESETS)}"),
            (
                self.colour_scale in COLOUR_SCALES,
                f"colour scale {self.colour_scale!r} is unknown: use 'fit' or 'fixed'",
            ),
            (self.criterion in MAP_CRITERIA, f"criterion {self.criterion!r} is unknown: use 'paper' or 'transfer'"),
        ]
        check_all(checks)
        check_run_name(self.run)
        return self

    def to_json(self) -> str:
        """The settings as indented JSON (layers as a list, tau to three significant digits)."""
        return json.dumps(dict(dataclasses.asdict(self), tau=_short_tau(self.tau)), indent=2)

    @classmethod
    def from_dict(cls, data: object) -> Settings:
        """Build from a dict of field values, checking keys and types; raises LearngeneError."""
        if not isinstance(data, dict):
            raise LearngeneError('settings must be a JSON object such as {"tau": 1e-4}: wrap the values in braces')
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise LearngeneError(f"unknown settings {unknown}: use only {', '.join(fields)}")
        values = {name: _coerce(name, value) for name, value in data.items()}
        return cls(**values).validate()

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Parse settings JSON; raises LearngeneError with the position of a syntax error."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LearngeneError(
                f"settings are not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): fix the text and "
                "apply again"
            ) from None
        return cls.from_dict(data)

    def to_query(self) -> str:
        """The settings that differ from the defaults, as a URL query string (numbers written to round-trip exactly,
        tau to three significant digits)."""
        default = Settings()
        pairs = []
        for f in dataclasses.fields(self):
            value = _short_tau(self.tau) if f.name == "tau" else getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = repr(value) if isinstance(value, float) else str(value)
            pairs.append((f.name, text))
        return urlencode(pairs, safe=",")

    @classmethod
    def from_query(cls, query: str) -> Settings:
        """Parse a URL query string (as Voila puts in QUERY_STRING); raises LearngeneError on bad values."""
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
        fields = {f.name for f in dataclasses.fields(cls)}
        ignored = {"voila-template", "voila-theme"}
        data: dict[str, object] = {}
        for key, values in parsed.items():
            if key in ignored:
                continue
            if key not in fields:
                raise LearngeneError(f"unknown link parameter {key!r}: use only {', '.join(sorted(fields))}")
            data[key] = _from_text(key, values[-1])
        return cls.from_dict(data)


def significant(value: float, digits: int = TAU_DIGITS) -> float:
    """`value` rounded to `digits` significant digits (0.003000000000000001 -> 0.003)."""
    return float(f"{value:.{digits - 1}e}")


def _short_tau(tau: float | None) -> float | None:
    return None if tau is None else significant(tau)


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _from_text(name: str, text: str) -> object:
    """A query-string value in the type its field wants (validation comes later)."""
    if name == "layers":
        return [part.strip() for part in text.split(",") if part.strip()]
    if name in ("tau", "threshold") and text.strip().lower() in ("", "none"):
        return None
    if name in ("absolute", "baselines"):
        if text.strip().lower() not in _BOOLS:
            raise LearngeneError(f"link parameter {name}={text!r} is not a yes/no value: use 1 or 0")
        return _BOOLS[text.strip().lower()]
    return text


def _coerce(name: str, value: object) -> object:
    """A JSON or query value converted to the field's type, or LearngeneError naming the field."""
    try:
        if name in ("tau", "threshold"):
            if value is None:
                return None
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if name in ("way", "shot", "target_tasks"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if name in ("absolute", "baselines"):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if name == "layers":
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return tuple(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise LearngeneError(
            f"setting {name}={value!r} has the wrong type: see the exported settings for an example"
        ) from None
