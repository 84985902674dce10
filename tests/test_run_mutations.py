"""Damaged run directories and learngene files: every command refuses in one line (exit 2) and changes no file."""

import copy
import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import SHORT_ARGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli.main import main


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the lock file aside) with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


COMMANDS = {
    "collective same preset": ["collective", "--preset", "smoke", *SHORT_ARGS, "--quiet"],
    "collective same preset --resume": ["collective", "--preset", "smoke", *SHORT_ARGS, "--resume", "--quiet"],
    "collective other preset": ["collective", "--preset", "fast", "--quiet"],
    "criterion": ["criterion"],
    "extract": ["extract", "--layers", "conv2-conv3", "--out", "{tmp}/gene.safetensors"],
    "individual": ["individual", "--tasks", "1", "--epochs", "1", "--quiet"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_run_without_its_manifest_keeps_every_checkpoint_after_any_command(short_run, tmp_path, capsys, command):
    run_dir = tmp_path / "run"
    shutil.copytree(short_run, run_dir)
    (run_dir / "manifest.json").unlink()
    before = snapshot(run_dir)
    argv = [part.replace("{tmp}", str(tmp_path)) for part in COMMANDS[command]]
    code, err = run_cli(argv[:1] + ["--run-dir", str(run_dir)] + argv[1:], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "manifest.json" in err, err
    assert snapshot(run_dir) == before


# ------------------------------------------------------------ property tests: any damage, every reading command

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (the value itself included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, prefix + (i,))
    return found


def at(doc: object, path: tuple) -> object:
    """The value at `path` in a JSON value."""
    for key in path:
        doc = doc[key]
    return doc


def other_than(value: object) -> st.SearchStrategy:
    """JSON values that differ from `value`, so that setting one always damages."""
    return json_values.filter(lambda v: v != value)


def edited(doc: object, path: tuple, action: str, value: object) -> object:
    """`doc` with the value at `path` replaced by `value`, or deleted."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def damage_bytes(data: bytes, draw) -> bytes:
    """A truncation, a flipped byte, garbage, or deep nesting instead of the file's bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "garbage", "deep"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "garbage":
        return draw(st.binary(max_size=64))
    return b"[" * 20_000 + b"]" * 20_000


def resign(run_dir: Path, name: str) -> None:
    """Give the damaged file its own digest in the manifest, so that only validation can refuse it."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def damage_json(path: Path, draw, lines: bool = False) -> None:
    text = path.read_text()
    doc = [json.loads(line) for line in text.splitlines()] if lines else json.loads(text)
    if draw(st.booleans()):
        path.write_bytes(damage_bytes(path.read_bytes(), draw))
        return
    where = draw(st.sampled_from(paths(doc)))
    action = draw(st.sampled_from(["set", "delete"] if where else ["set"]))
    doc = edited(doc, where, action, draw(other_than(at(doc, where))))
    if lines and isinstance(doc, list):
        path.write_text("".join(json.dumps(row) + "\n" for row in doc))
    else:
        path.write_text(json.dumps(doc))


RETYPES = (np.int8, np.float16, np.bool_, np.str_)


def retyped(array: np.ndarray, dtype: type) -> np.ndarray:
    """`array` stored as `dtype`; names, which no number can be cast from, become zeros of that dtype."""
    if array.dtype.kind == "U" and np.dtype(dtype).kind != "U":
        return np.zeros(array.shape, dtype=dtype)
    with np.errstate(invalid="ignore"):
        return array.astype(dtype)


def other_dtypes(array: np.ndarray) -> list[type]:
    """The dtypes of RETYPES that change how `array` is stored (np.str_ fits names of any length)."""
    return [
        d for d in RETYPES if np.dtype(d).kind != array.dtype.kind or np.dtype(d).itemsize not in (0, array.itemsize)
    ]


def damage_criterion(path: Path, draw) -> None:
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    key = draw(st.sampled_from(sorted(arrays)))
    kind = draw(st.sampled_from(["nan", "value", "dtype", "shape", "drop", "bytes"]))
    if kind == "bytes":
        path.write_bytes(damage_bytes(path.read_bytes(), draw))
        return
    array = arrays[key]
    if kind == "drop":
        del arrays[key]
    elif kind == "dtype":
        arrays[key] = retyped(array, draw(st.sampled_from(other_dtypes(array))))
    elif kind == "shape":
        arrays[key] = array.reshape(-1)[: draw(st.integers(0, 3))]
    elif array.dtype.kind == "f":
        filled = array.copy()
        value = np.nan if kind == "nan" else draw(st.sampled_from([-1.0, 2.0, np.inf, 1e300]))
        filled.reshape(-1)[draw(st.integers(0, max(0, filled.size - 1))) if filled.size else slice(None)] = value
        arrays[key] = filled
    else:
        other = st.sampled_from([0, -1, 2, 10**9, 2**62]).filter(lambda v: not np.array_equal(v, array))
        arrays[key] = np.asarray(draw(other), dtype=np.int64)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


RUN_FILES = ("manifest.json", "config.json", "metrics.jsonl", "criterion.npz")


def damage_run(run_dir: Path, draw) -> str:
    """Damage one of a run's files, re-signing it in the manifest or not; the damaged file's name."""
    target = draw(st.sampled_from(RUN_FILES))
    if target == "criterion.npz":
        damage_criterion(run_dir / target, draw)
    else:
        damage_json(run_dir / target, draw, lines=target == "metrics.jsonl")
    if target in ("metrics.jsonl", "criterion.npz") and draw(st.booleans()):
        resign(run_dir, target)
    return target


READERS = [
    ["criterion", "--json"],
    ["extract", "--out", "{out}/gene.safetensors"],
    ["collective", "--preset", "smoke", *SHORT_ARGS, "--quiet"],
    ["individual", "--tasks", "1", "--epochs", "1", "--way", "2", "--shot", "1", "--query", "1", "--quiet"],
]


def every_reader_is_clean(run_dir: Path, out: Path, capsys, extra: list[str] = (), readers=READERS) -> None:
    before = snapshot(run_dir)
    for reader in readers:
        argv = [a.replace("{out}", str(out)) for a in reader]
        code, err = run_cli(argv[:1] + ["--run-dir", str(run_dir)] + argv[1:] + list(extra), capsys)
        assert code == 0 or (code == 2 and len(err.splitlines()) == 1 and "error" in err), (argv, code, err)
        assert "Traceback" not in err
        assert snapshot(run_dir) == before, argv


@PROPERTY
@given(data=st.data())
def test_any_damage_to_a_run_ends_every_reading_command_in_one_line_and_changes_no_file(
    short_run, tmp_path_factory, capsys, data
):
    run_dir = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(short_run, run_dir, ignore=shutil.ignore_patterns(".lock", "export"))
    damage_run(run_dir, data.draw)
    every_reader_is_clean(run_dir, run_dir.parent, capsys)


@pytest.fixture(scope="module")
def gene_file(short_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gene") / "gene.safetensors"
    assert main(["extract", "--run-dir", str(short_run), "--layers", "conv2-conv3", "--out", str(out)]) == 0
    return out


def damage_gene(data: bytes, draw) -> bytes:
    """A learngene file's bytes damaged: raw bytes, a metadata value, or a tensor's dtype, shape or offsets."""
    part = draw(st.sampled_from(["metadata", "tensor header", "bytes"]))
    if part == "bytes":
        return damage_bytes(data, draw)
    length = int.from_bytes(data[:8], "little")
    header, body = json.loads(data[8 : 8 + length]), data[8 + length :]
    if part == "metadata":
        key = draw(st.sampled_from(sorted(header["__metadata__"])))
        meta = json.loads(header["__metadata__"][key])
        where = draw(st.sampled_from(paths(meta)))
        value = draw(other_than(at(meta, where)) | st.just("deep"))
        deep = "[" * 5000 + "]" * 5000
        header["__metadata__"][key] = deep if value == "deep" else json.dumps(edited(meta, where, "set", value))
    else:
        name = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        header[name][field] = draw(
            {
                "dtype": st.sampled_from(["F16", "F64", "I64", "BOOL", "U8", "X9"]),
                "shape": st.lists(st.integers(0, 2**63), max_size=5),
                "data_offsets": st.lists(st.integers(0, 2**40), min_size=2, max_size=2),
            }[field].filter(lambda v: v != header[name][field])
        )
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + body


@PROPERTY
@given(data=st.data())
def test_any_damage_to_a_learngene_file_ends_in_one_line_or_works_and_changes_no_file(
    short_run, gene_file, tmp_path_factory, capsys, data
):
    folder = tmp_path_factory.mktemp("gene-damaged")
    damaged = damage_gene(gene_file.read_bytes(), data.draw)
    path = folder / "gene.safetensors"
    path.write_bytes(damaged)
    run_dir = folder / "run"
    shutil.copytree(short_run, run_dir, ignore=shutil.ignore_patterns(".lock", "export"))
    readers = [READERS[-1] + ["--learngene", str(path)]]
    every_reader_is_clean(run_dir, folder, capsys, readers=readers)
    assert path.read_bytes() == damaged


# ------------------------------------------------------------ the damage generators themselves


def stored(path: Path) -> object:
    """What a run file holds (parsed JSON, or each array's dtype, shape and bytes), or its bytes where unreadable."""
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                return {key: (data[key].dtype.str, data[key].shape, data[key].tobytes()) for key in data.files}
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in path.read_text().splitlines()]
        return json.loads(path.read_text())
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RecursionError):
        return path.read_bytes()


def gene_held(data: bytes) -> object:
    """A learngene file's parsed header and tensor bytes, or its bytes where the header does not parse."""
    length = int.from_bytes(data[:8], "little")
    try:
        return json.loads(data[8 : 8 + length]), data[8 + length :]
    except (ValueError, RecursionError):
        return data


def test_every_field_of_a_criterion_log_can_be_stored_as_each_other_dtype(short_run, tmp_path):
    with np.load(short_run / "criterion.npz") as data:
        arrays = {key: data[key] for key in data.files}
    assert arrays["layer_names"].dtype.kind == "U"  # the field no number can be cast from
    for key, array in arrays.items():
        for dtype in other_dtypes(array):
            damaged = retyped(array, dtype)
            assert damaged.dtype.kind == np.dtype(dtype).kind and damaged.shape == array.shape, (key, dtype)
            np.savez(tmp_path / "one.npz", **{key: damaged})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_damage_the_helpers_draw_applies_and_changes_what_the_file_holds(short_run, gene_file, data):
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        for name in RUN_FILES:
            shutil.copyfile(short_run / name, run_dir / name)
        target = damage_run(run_dir, data.draw)
        damaged, original = run_dir / target, short_run / target
        raw = target == "criterion.npz" and damaged.read_bytes() != original.read_bytes()
        assert raw or stored(damaged) != stored(original), target  # a flipped zip header byte hides from np.load
    original = gene_file.read_bytes()
    assert gene_held(damage_gene(original, data.draw)) != gene_held(original)
