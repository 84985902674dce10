"""Names from the disk reach messages as one safe line and JSON as valid Unicode; no warning precedes a refusal."""

from __future__ import annotations

import json
import os
import warnings

import pytest
from PIL import Image
from test_own_tasks import write_episodes

from core.cli.main import main
from core.data.image_io import decode_square
from core.errors import LearngeneError
from core.names import shown

NEWLINE_AND_ESCAPE = "ep\n\x1b[31mred"


@pytest.fixture(scope="module")
def gene_file(short_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("gene") / "gene.safetensors"
    assert main(["extract", "--run-dir", str(short_run), "--out", str(path)]) == 0
    return path


def test_shown_escapes_control_characters_and_undecodable_bytes_into_one_printable_line():
    assert shown(NEWLINE_AND_ESCAPE) == "ep\\n\\x1b[31mred"
    assert shown(os.fsdecode(b"caf\xe9")) == "caf\\xe9" and shown("caf\u00e9\u2028") == "caf\u00e9\\u2028"
    assert shown(b"tab\there") == "tab\\there"


def test_an_episode_folder_named_with_a_newline_and_an_ansi_escape_is_named_in_one_escaped_line(
    gene_file, tmp_path, capsys
):
    (tmp_path / NEWLINE_AND_ESCAPE / "query").mkdir(parents=True)
    argv = ["individual", "--learngene", str(gene_file), "--target-dataset", "episodes"]
    assert main([*argv, "--target-root", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "\x1b" not in err
    assert "episode ep\\n\\x1b[31mred has no support/ folder" in err


def test_names_that_are_not_utf8_reach_the_json_escaped_never_as_lone_surrogates(gene_file, tmp_path, capsys):
    root = tmp_path / os.fsdecode(b"episodes-\xff")
    write_episodes(root, [[0, 1], [2, 3]], [2, 2])
    argv = ["individual", "--learngene", str(gene_file), "--target-dataset", "episodes", "--target-root", str(root)]
    assert main([*argv, "--epochs", "1", "--quiet", "--out-json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    result_text = json.dumps(result, ensure_ascii=False)
    result_text.encode("utf-8")  # a lone surrogate cannot be encoded
    assert result["target"]["path"].endswith("episodes-\\xff")


def test_an_image_over_pillows_warning_limit_is_refused_in_one_line_without_a_warning(tmp_path):
    path = tmp_path / "huge.png"
    side = int(Image.MAX_IMAGE_PIXELS**0.5) + 10  # past Pillow's warning limit, short of its error limit
    Image.new("1", (side, side)).save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LearngeneError, match="megapixels this program decodes"):
            decode_square(path, "huge.png", 16, 1)
    assert [w.category.__name__ for w in caught] == []
