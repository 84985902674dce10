"""A learngene file whose header or metadata cannot be true is refused by name in one line, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest

from core.cli.main import main
from core.collective.runs import open_run
from core.errors import LearngeneError
from core.learngene.extraction import extract
from core.learngene.gene import load, save
from core.learngene.selection import check_block


@pytest.fixture(scope="module")
def gene(short_run):
    run = open_run(short_run)
    return extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))


def one_line_exit_2(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def header_file(path, shape, offsets=(0, 0)):
    header = json.dumps({"x": {"dtype": "F32", "shape": shape, "data_offsets": list(offsets)}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(offsets[1]))
    return path


@pytest.mark.parametrize(
    ("shape", "offsets"),
    [
        ([0, 2**63], (0, 0)),
        ([2**63, 0], (0, 0)),
        ([0, 2**64 - 1], (0, 0)),
        ([-1, 4], (0, 0)),
        ([1.5], (0, 0)),
        (["4"], (0, 0)),
        ([2**40, 2**40], (0, 0)),
        ([3], (0, 8)),
    ],
)
def test_a_header_with_an_absurd_shape_is_refused_in_one_line(tmp_path, capsys, shape, offsets):
    path = header_file(tmp_path / "gene.safetensors", shape, offsets)
    err = one_line_exit_2(["individual", "--learngene", str(path), "--target-dataset", "glyphs"], capsys)
    assert f"{path} is not a valid safetensors file" in err


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"image_size": 64}, "image_size 64 where the network has"),
        ({"image_size": 8}, "input_size 16 is not image_size 8 halved by pools"),
        ({"input_size": 32}, "input_size 32 where the network has"),
        ({"image_channels": 3}, "image_channels 3 where the network has 1"),
        ({"pools": ()}, r"pools \[\] where the network has \['conv2'\]"),
    ],
)
def test_metadata_that_disagrees_with_the_recorded_network_is_refused_by_name(gene, tmp_path, change, named):
    path = save(dataclasses.replace(gene, **change), tmp_path / "gene.safetensors")
    with pytest.raises(LearngeneError, match=f"{named}.*so its metadata disagrees with its layers"):
        load(path)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"input_size": 12}, "input_size 12 is not image_size 32 halved by pools"),
        ({"input_size": 64}, "input_size 64 is not image_size 32 halved by pools"),
    ],
)
def test_without_a_network_record_the_input_size_must_come_from_the_image_size(gene, tmp_path, change, named):
    assert (gene.image_size, gene.input_size) == (32, 16)
    path = save(dataclasses.replace(gene, network=None, **change), tmp_path / "gene.safetensors")
    with pytest.raises(LearngeneError, match=named):
        load(path)


def test_a_learngene_that_does_not_fit_the_runs_checkpoint_is_refused_naming_what_differs(
    short_run, gene, tmp_path, capsys
):
    path = save(dataclasses.replace(gene, network=None, input_size=4), tmp_path / "gene.safetensors")
    assert load(path).input_size == 4
    argv = ["individual", "--run-dir", str(short_run), "--learngene", str(path), "--quiet"]
    err = one_line_exit_2(argv, capsys)
    assert f"does not fit task {gene.task} of" in err and "input_size 4 where the network has 16" in err
