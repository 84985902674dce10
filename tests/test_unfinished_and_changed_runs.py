"""A run stopped early still serves `individual`, which says so; a run whose images changed pixel by pixel is caught."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_own_tasks import glyph_images, write_class

from core.cli.main import main
from core.collective.config import preset
from core.collective.training import train_collective
from core.errors import LearngeneError
from core.events import Cancelled, TaskFinished

CONFIG = preset("smoke", dataset="imagefolder", image_size=16, tasks=3, epochs=1)


@pytest.fixture
def stopped_run(tmp_path):
    """A 3-task run on an image folder of 10 glyph classes, stopped after its first task; the run and the folder."""
    data = tmp_path / "data"
    glyphs = glyph_images(16)
    for c, idx in enumerate(glyphs.indices_by_class()[340:350]):
        write_class(data / f"g{c}", glyphs.images[idx[:12]])
    done = []
    with pytest.raises(Cancelled):
        train_collective(
            CONFIG,
            tmp_path / "run",
            root=data,
            listeners=[lambda e: isinstance(e, TaskFinished) and done.append(e)],
            should_stop=lambda: bool(done),
        )
    return tmp_path / "run", data


def change_one_image(data) -> None:
    """Invert the pixels of one image: same file name, same image size, other pixels."""
    image = data / "g0" / "00.png"
    pixels = np.asarray(Image.open(image))
    Image.fromarray(255 - pixels).save(image)


def individual_json(run, data, capsys) -> tuple[dict, str]:
    argv = ["individual", "--run-dir", str(run), "--root", str(data), "--way", "2", "--shot", "2", "--tasks", "1"]
    assert main([*argv, "--epochs", "1", "--quiet", "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_individual_on_an_unfinished_run_says_how_many_tasks_are_finished_and_which_checkpoint_it_uses(
    stopped_run, capsys
):
    result, err = individual_json(*stopped_run, capsys)
    notes = [line for line in err.splitlines() if "tasks (still training or stopped)" in line]
    assert len(notes) == 1 and "has finished 1 of its 3 tasks" in notes[0] and "checkpoint of task 0" in notes[0]
    setup = result["setup"]
    assert (setup["run_finished_tasks"], setup["run_tasks"], setup["checkpoint_task"]) == (1, 3, 0)


def test_one_image_with_other_pixels_stops_resume_and_is_a_note_for_individual(stopped_run, capsys):
    run, data = stopped_run
    change_one_image(data)
    with pytest.raises(LearngeneError, match=r"the images differ from the training images"):
        train_collective(CONFIG, run, root=data, resume=True)
    _, err = individual_json(run, data, capsys)
    assert "note: the images differ from the training images" in err
