"""Learngene files: the layers and BatchNorm statistics survive a round trip, and tampered files are refused."""

import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.cli.main import main
from core.collective.runs import open_run
from core.errors import LearngeneError
from core.learngene.extraction import default_task, extract
from core.learngene.gene import FORMAT_VERSION, LAYER_KEYS, load, save
from core.learngene.selection import check_block


@pytest.fixture(scope="module")
def gene_file(smoke_run, tmp_path_factory):
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))
    return save(gene, tmp_path_factory.mktemp("gene") / "gene.safetensors")


def rewrite(source, target, *, tensors=None, metadata=None):
    """Copy a learngene file, changing some tensors or metadata values (JSON-encoded as the format wants)."""
    raw_tensors = load_file(source)
    with open(source, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        meta = json.loads(handle.read(header_len))["__metadata__"]
    raw_tensors.update(tensors or {})
    for key, value in (metadata or {}).items():
        meta[key] = json.dumps(value)
    save_file({k: v for k, v in raw_tensors.items() if v is not None}, target, metadata=meta)
    return target


def test_round_trip_keeps_weights_and_batchnorm_statistics_of_the_checkpoint(smoke_run, gene_file):
    run = open_run(smoke_run)
    gene = load(gene_file)
    checkpoint = run.checkpoint_tensors(gene.task)
    assert gene.layers == ("conv2", "conv3") and gene.task == default_task(run) == run.last_task
    for name in gene.layers:
        for key in LAYER_KEYS:
            assert torch.equal(gene.tensors[f"{name}.{key}"], checkpoint[f"convs.{name}.{key}"])
    assert gene.layer_state("conv3")["bn.running_var"].shape == (run.spec(gene.task).widths[2],)


def test_file_records_where_the_block_sits_in_the_collective(smoke_run, gene_file):
    run = open_run(smoke_run)
    gene = load(gene_file)
    spec = run.spec(gene.task)
    assert gene.in_channels == spec.widths[0]
    assert gene.input_size == spec.image_size // 2  # smoke pools after conv1, so conv2 sees half the image
    assert gene.pools == tuple(f"conv{p}" for p in spec.pool_after if p in (2, 3))
    assert (gene.image_channels, gene.dataset, gene.run) == (1, "glyphs", str(smoke_run.resolve()))
    assert gene.selection["rule"] == "explicit" and gene.num_parameters() > 0


def test_metadata_naming_a_layer_without_tensors_is_refused(gene_file, tmp_path):
    bad = rewrite(gene_file, tmp_path / "bad.safetensors", metadata={"layers": ["conv2", "conv3", "conv4"]})
    with pytest.raises(LearngeneError, match=r"bad.safetensors is not a valid learngene file.*conv4.*missing"):
        load(bad)


def test_a_tensor_whose_shape_disagrees_with_the_metadata_is_refused(gene_file, tmp_path):
    weight = load_file(gene_file)["conv3.conv.weight"]
    bad = rewrite(gene_file, tmp_path / "bad.safetensors", tensors={"conv3.conv.weight": weight[:-1].clone()})
    with pytest.raises(LearngeneError, match="conv3.conv.weight has shape"):
        load(bad)


def test_consistent_shapes_that_break_the_channel_chain_are_refused(gene_file, tmp_path):
    tensors = load_file(gene_file)
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    narrow = tensors["conv3.conv.weight"][:, :-1].clone()
    shapes["conv3.conv.weight"] = list(narrow.shape)
    bad = rewrite(
        gene_file, tmp_path / "bad.safetensors", tensors={"conv3.conv.weight": narrow}, metadata={"shapes": shapes}
    )
    with pytest.raises(LearngeneError, match="conv3 takes"):
        load(bad)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"format": FORMAT_VERSION + 1}, "format version"),
        ({"kind": "checkpoint"}, "kind"),
        ({"layers": ["conv1", "conv2"]}, "conv1"),
        ({"layers": ["conv3", "conv2"]}, "not in network order"),
        ({"layers": ["conv2"]}, "not part of layers conv2"),
        ({"in_channels": -3}, "whole number"),
    ],
)
def test_edited_metadata_is_refused_with_the_file_named(gene_file, tmp_path, metadata, message):
    bad = rewrite(gene_file, tmp_path / "edited.safetensors", metadata=metadata)
    with pytest.raises(LearngeneError, match=message) as err:
        load(bad)
    assert "edited.safetensors" in str(err.value)


def test_an_extra_tensor_is_refused(gene_file, tmp_path):
    bad = rewrite(gene_file, tmp_path / "bad.safetensors", tensors={"payload": torch.zeros(3)})
    with pytest.raises(LearngeneError, match="payload"):
        load(bad)


@pytest.mark.parametrize("where", [0.25, 0.5, 0.999])
def test_a_flipped_byte_in_the_tensor_data_is_reported_with_the_files_name(gene_file, tmp_path, where):
    data = bytearray(gene_file.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    position = header_end + int((len(data) - header_end - 1) * where)
    data[position] ^= 0x01
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(data))
    with pytest.raises(LearngeneError, match="damaged.safetensors is corrupted"):
        load(damaged)


def test_a_truncated_file_is_reported_with_its_name(gene_file, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(gene_file.read_bytes()[:-100])
    with pytest.raises(LearngeneError, match="cut.safetensors"):
        load(cut)


def test_a_file_that_is_not_safetensors_is_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04pickle-looking bytes")
    with pytest.raises(LearngeneError, match="junk.safetensors"):
        load(junk)


def test_extract_command_writes_a_loadable_file(smoke_run, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    assert main(["extract", "--run-dir", str(smoke_run), "--top-k", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file"] == str(out) and len(summary["layers"]) == 1
    assert load(out).layers == tuple(summary["layers"])


def test_extract_command_refuses_a_broken_selection_in_one_line(smoke_run, tmp_path, capsys):
    assert main(["extract", "--run-dir", str(smoke_run), "--layers", "conv1,conv3", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "conv1, conv3 are not contiguous" in err and "nearest valid block is conv1-conv3" in err
    assert not (tmp_path / "x").exists()


def test_extracting_from_an_unfinished_task_names_the_valid_range(smoke_run, tmp_path, capsys):
    assert main(["extract", "--run-dir", str(smoke_run), "--task", "99", "--out", str(tmp_path / "gene")]) == 2
    assert "choose --task 0..33" in capsys.readouterr().err and not (tmp_path / "gene").exists()


def consistent_rewrite(source, target, tensors=None, metadata=None):
    """Like rewrite(), with the shapes and the tensor checksum recomputed: only a real check can refuse the file."""
    from core.learngene.gene import tensors_sha256

    merged = dict(load_file(source))
    merged.update(tensors or {})
    meta = {"shapes": {k: list(v.shape) for k, v in sorted(merged.items())}, "tensors_sha256": tensors_sha256(merged)}
    return rewrite(source, target, tensors=tensors, metadata=meta | (metadata or {}))


def _kernels(gene_file, size):
    tensors = load_file(gene_file)
    return {"conv3.conv.weight": torch.zeros(tensors["conv3.conv.weight"].shape[:2] + (size, size))}


def _no_outputs(gene_file):
    inputs = load_file(gene_file)["conv3.conv.weight"].shape[1]
    zero = {f"conv3.{k}": torch.zeros(0) for k in LAYER_KEYS[1:6]}
    return zero | {"conv3.conv.weight": torch.zeros(0, inputs, 3, 3)}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: (_kernels(f, 5), {}), "5x5 kernels, not 3x3"),
        (lambda f: (_kernels(f, 1), {}), "1x1 kernels, not 3x3"),
        (lambda f: (_no_outputs(f), {}), "conv3 has 0 output channels"),
        (lambda f: ({}, {"image_size": 2**63}), "image_size is 9223372036854775808, not a whole number from 8"),
        (lambda f: ({}, {"input_size": 2**63}), "input_size is 9223372036854775808"),
        (lambda f: ({}, {"image_channels": 0}), "image_channels is 0"),
        (lambda f: ({}, {"task": True}), "task is True"),
        (lambda f: ({}, {"format": str(FORMAT_VERSION)}), "format is '2', not a version number"),
        (lambda f: ({}, {"dataset": ["glyphs"]}), "dataset is not text"),
        (
            lambda f: ({"conv2.bn.running_var": torch.full_like(load_file(f)["conv2.bn.running_var"], math.nan)}, {}),
            "conv2 holds NaN",
        ),
    ],
    ids=[
        "5x5",
        "1x1",
        "zero outputs",
        "image 2^63",
        "input 2^63",
        "no channels",
        "bool task",
        "string format",
        "dataset list",
        "NaN statistics",
    ],
)
def test_a_consistent_file_with_impossible_shapes_or_fields_is_refused_by_load(gene_file, tmp_path, change, message):
    tensors, metadata = change(gene_file)
    bad = consistent_rewrite(gene_file, tmp_path / "odd.safetensors", tensors, metadata)
    with pytest.raises(LearngeneError, match=re.escape(message)) as err:
        load(bad)
    assert str(err.value).startswith(str(bad)) and "\n" not in str(err.value)


def test_deeply_nested_metadata_is_refused_in_one_line(gene_file, tmp_path):
    bad = tmp_path / "deep.safetensors"
    with open(gene_file, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        meta = json.loads(handle.read(header_len))["__metadata__"]
    meta["selection"] = "[" * 100_000 + "]" * 100_000
    save_file(dict(load_file(gene_file)), bad, metadata=meta)
    with pytest.raises(LearngeneError, match="deep.safetensors is not a valid learngene file .*nested deeper"):
        load(bad)
