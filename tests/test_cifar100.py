"""CIFAR-100 from its official files: a tiny fake in the exact pickle format, safe unpickling, md5, download."""

from __future__ import annotations

import builtins
import hashlib
import io
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from fake_cifar100 import NAMES, TEST, TRAIN, contents, encode, write_folder

from core.cli.messages import line, words
from core.data import cifar100
from core.errors import LearngeneError


def _tarball_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in contents().items():
            data = encode(content, "python2")
            member = tarfile.TarInfo(f"cifar-100-python/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, dest: Path) -> None:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(cifar100, "fetch", refuse)


@pytest.mark.parametrize("style", ["python2", "python3 bytes keys", "python3 str keys"])
@pytest.mark.usefixtures("no_network")
def test_the_folder_loads_train_then_test_of_each_class_with_meta_names(tmp_path: Path, style: str) -> None:
    write_folder(tmp_path, style)
    imageset = cifar100.load(tmp_path, image_size=32)
    assert imageset.class_names == NAMES
    # CIFAR-100's fine labels are the 100 names in alphabetical order, from apple (0) and cattle (19) to worm (99)
    assert len(set(NAMES)) == 100 and list(NAMES) == sorted(NAMES)
    assert (NAMES[0], NAMES[19], NAMES[99]) == ("apple", "cattle", "worm")
    assert imageset.images.shape == (100 * (TRAIN + TEST), 3, 32, 32)
    assert (imageset.images[:, 0] == 200).all()
    assert imageset.images[:, 2, 5, 5].tolist() == imageset.labels.tolist()
    for indices in imageset.indices_by_class():
        assert imageset.images[indices, 1, 0, 0].tolist() == [100] * TRAIN + [50] * TEST


@pytest.mark.usefixtures("no_network")
def test_the_tarball_loads_like_the_folder_when_its_md5_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tarball_bytes()
    (tmp_path / "cifar100").mkdir()
    (tmp_path / "cifar100" / cifar100.TARBALL).write_bytes(data)
    monkeypatch.setattr(cifar100, "TARBALL_MD5", hashlib.md5(data).hexdigest())
    from_tarball = cifar100.load(tmp_path, image_size=32)
    from_folder = cifar100.load(write_folder(tmp_path / "other").parent, image_size=32)
    assert from_tarball.images.equal(from_folder.images) and from_tarball.labels.equal(from_folder.labels)


@pytest.mark.usefixtures("no_network")
def test_a_tarball_with_the_wrong_md5_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / cifar100.TARBALL).write_bytes(_tarball_bytes())
    with pytest.raises(LearngeneError, match=f"{tmp_path / cifar100.TARBALL} is damaged \\(md5"):
        cifar100.load(tmp_path, image_size=32)


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_a_corrupt_tarball_with_a_matching_md5_is_still_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    data = _tarball_bytes()[:5000] if damage == "truncated" else b"\x1f\x8b\x08 not a gzip stream"
    (tmp_path / cifar100.TARBALL).write_bytes(data)
    monkeypatch.setattr(cifar100, "TARBALL_MD5", hashlib.md5(data).hexdigest())
    with pytest.raises(LearngeneError, match=f"{cifar100.TARBALL}.*get a fresh copy") as caught:
        cifar100.load(tmp_path, image_size=32)
    assert "\n" not in str(caught.value)


class _Payload:
    """Unpickling this runs `call(argument)`: here, code that creates a marker file."""

    def __init__(self, call: object, argument: str) -> None:
        self.call, self.argument = call, argument

    def __reduce__(self) -> tuple:
        return self.call, (self.argument,)


@pytest.mark.parametrize("call", [builtins.exec, builtins.eval])
def test_a_malicious_pickle_is_refused_before_it_runs_anything(tmp_path: Path, call: object) -> None:
    marker = tmp_path / "pwned"
    files = contents()
    files["train"][b"data"] = _Payload(call, f"open({str(marker)!r}, 'w').close()")
    write_folder(tmp_path / "evil", "python3 bytes keys", files)
    with pytest.raises(LearngeneError, match=f"train is not a valid CIFAR-100 file .*builtins.{call.__name__}"):
        cifar100.load(tmp_path / "evil", image_size=32)
    assert not marker.exists()
    pickle.loads((tmp_path / "evil" / "cifar-100-python" / "train").read_bytes())
    assert marker.exists(), "the payload is real: an ordinary unpickler runs it"


@pytest.mark.parametrize(
    "split, key, value, message",
    [
        ("train", b"data", [[0] * 3072] * 200, "bad data or fine_labels"),
        ("train", b"fine_labels", [[1, 2], [3]] + [0] * 198, "bad data or fine_labels"),
        ("test", b"fine_labels", [100] * (100 * TEST), "labels outside its 100 classes"),
        ("meta", b"fine_label_names", [b"same"] * 100, "lacks distinct fine_label_names"),
    ],
    ids=["data not an array", "ragged labels", "label out of range", "duplicate names"],
)
def test_files_with_the_wrong_structure_are_refused(
    tmp_path: Path, split: str, key: bytes, value: list, message: str
) -> None:
    files = contents()
    files[split][key] = value
    write_folder(tmp_path, "python3 bytes keys", files)
    with pytest.raises(LearngeneError, match=message):
        cifar100.load(tmp_path, image_size=32)


def test_a_truncated_pickle_is_a_clean_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "test").write_bytes((folder / "test").read_bytes()[:1000])
    with pytest.raises(LearngeneError, match="test is not a valid CIFAR-100 file"):
        cifar100.load(tmp_path, image_size=32)


@pytest.mark.usefixtures("no_network")
def test_an_incomplete_folder_names_the_missing_files(tmp_path: Path) -> None:
    (write_folder(tmp_path) / "train").unlink()
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(LearngeneError, match="incomplete \\(missing train, test\\)"):
        cifar100.load(tmp_path, image_size=32)
    assert "missing train, test" in words(cifar100.info(tmp_path).reason)


@pytest.mark.usefixtures("no_network")
def test_nothing_on_disk_without_download_points_to_download(tmp_path: Path) -> None:
    with pytest.raises(LearngeneError) as nothing:
        cifar100.load(tmp_path, image_size=32, download=False)
    with pytest.raises(LearngeneError) as no_root:
        cifar100.load(None, image_size=32, download=True)
    assert "--download" in line(nothing.value) and "--root" in line(no_root.value)
    assert "--download" in words(cifar100.info(tmp_path).how_to_get)
    assert words(cifar100.info(None).reason) == "no data root: set LEARNGENE_DATA or pass --root"


def test_download_keeps_a_verified_tarball_and_loads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tarball_bytes()
    requested = []
    monkeypatch.setattr(cifar100, "fetch", lambda url, dest: requested.append(url) or dest.write_bytes(data))
    monkeypatch.setattr(cifar100, "TARBALL_MD5", hashlib.md5(data).hexdigest())
    imageset = cifar100.load(tmp_path, image_size=32, download=True)
    assert requested == [cifar100.URL]
    assert (tmp_path / "cifar100" / cifar100.TARBALL).read_bytes() == data
    assert imageset.num_classes == 100
    cifar100.load(tmp_path, image_size=32, download=True)
    assert len(requested) == 1, "a tarball already on disk is not downloaded again"


def test_a_damaged_download_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cifar100, "fetch", lambda url, dest: dest.write_bytes(b"<html>proxy error</html>"))
    with pytest.raises(LearngeneError, match="damaged"):
        cifar100.load(tmp_path, image_size=32, download=True)
    assert list((tmp_path / "cifar100").iterdir()) == []


def test_a_network_failure_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cifar100, "fetch", offline)
    with pytest.raises(LearngeneError, match="could not download .*internet connection") as caught:
        cifar100.load(tmp_path, image_size=32, download=True)
    assert "\n" not in str(caught.value)


def test_other_image_sizes_are_resized(tmp_path: Path) -> None:
    write_folder(tmp_path)
    imageset = cifar100.load(tmp_path, image_size=20)
    assert imageset.images.shape == (300, 3, 20, 20)
    assert (imageset.images[:, 0] == 200).all()


def test_info_reports_availability_without_reading(tmp_path: Path) -> None:
    write_folder(tmp_path / "cifar100")
    described = cifar100.info(tmp_path)
    assert described.available and (described.classes, described.images, described.channels) == (100, 60000, 3)


def test_the_paper_division_is_64_base_16_open_world_and_20_novel_disjoint_classes() -> None:
    division = cifar100.paper_division(list(NAMES))
    assert {pool: len(ids) for pool, ids in division.items()} == {"base": 64, "open_world": 16, "novel": 20}
    assert sorted(division["base"] + division["open_world"] + division["novel"]) == list(range(100))
    assert [NAMES[i] for i in division["novel"]][:3] == ["baby", "bed", "bicycle"]
    assert "cattle" in [NAMES[i] for i in division["open_world"]]


def test_the_paper_division_follows_names_not_positions() -> None:
    shuffled = list(reversed(NAMES))
    division = cifar100.paper_division(shuffled)
    assert sorted(shuffled[i] for i in division["novel"]) == cifar100.PAPER_DIVISION["novel"]


def test_the_paper_division_names_missing_classes() -> None:
    with pytest.raises(LearngeneError, match="missing \\(apple, aquarium_fish"):
        cifar100.paper_division(["cat", "dog"])


def test_a_pickle_declaring_more_bytes_than_memory_holds_is_a_clean_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    huge = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 42) + b"."  # BINBYTES8 of 4 TiB: the unpickler allocates first
    (folder / "test").write_bytes(huge.ljust(21, b"\x00"))
    with pytest.raises(LearngeneError, match="test is not a valid CIFAR-100 file"):
        cifar100.load(tmp_path, image_size=32)


class _Uninitialised:
    """Unpickles as numpy.ndarray((N, 3072), uint8) called directly: an array of whatever memory held."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __reduce__(self) -> tuple:
        return np.ndarray, ((self.rows, 3072), "uint8")


def test_a_pickle_that_calls_numpy_ndarray_directly_is_refused(tmp_path: Path) -> None:
    files = contents()
    files["train"][b"data"] = _Uninitialised(len(files["train"][b"fine_labels"]))
    write_folder(tmp_path, "python3 bytes keys", files)
    assert pickle.loads((tmp_path / "cifar-100-python" / "train").read_bytes())[b"data"].shape[1] == 3072
    with pytest.raises(LearngeneError, match="train is not a valid CIFAR-100 file .*numpy.ndarray directly"):
        cifar100.load(tmp_path, image_size=32)
