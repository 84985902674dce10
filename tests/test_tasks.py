"""Class divisions, source streams and few-shot tasks are seeded, disjoint and validated."""

import pytest
import torch

from core.data.division import divide_classes
from core.data.imageset import ImageSet
from core.data.tasks import few_shot_tasks, source_stream
from core.errors import LearngeneError


def toy_set(classes: int = 30, per_class: int = 20) -> ImageSet:
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.randint(
        0, 256, (len(labels), 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return ImageSet("toy", images, labels, tuple(f"c{i}" for i in range(classes)))


def test_division_pools_are_disjoint_and_cover_every_class():
    d = divide_classes(100, seed=3)
    pools = [set(d.source), set(d.open_world), set(d.novel)]
    assert (len(d.source), len(d.open_world), len(d.novel)) == (64, 16, 20)
    assert set().union(*pools) == set(range(100))
    assert sum(len(p) for p in pools) == 100


def test_same_seed_gives_same_indices_and_another_seed_differs():
    s = toy_set()
    d = divide_classes(s.num_classes, seed=1)
    a = source_stream(s, d, tasks=4, classes_per_task=5, images_per_class=10, heldout_per_class=5, seed=1)
    b = source_stream(s, d, tasks=4, classes_per_task=5, images_per_class=10, heldout_per_class=5, seed=1)
    c = source_stream(s, d, tasks=4, classes_per_task=5, images_per_class=10, heldout_per_class=5, seed=2)
    assert all(torch.equal(x.train, y.train) and x.classes == y.classes for x, y in zip(a, b))
    assert any(not torch.equal(x.train, y.train) for x, y in zip(a, c))
    assert divide_classes(30, seed=1) != divide_classes(30, seed=2)


def test_source_tasks_draw_from_source_pool_and_keep_heldout_apart():
    s = toy_set()
    d = divide_classes(s.num_classes, seed=0)
    stream = source_stream(
        s, d, tasks=6, classes_per_task=5, images_per_class=12, heldout_per_class=8, seed=0, open_world_from=3
    )
    for task in stream:
        allowed = set(d.source) | (set(d.open_world) if task.task_id >= 3 else set())
        assert set(task.classes) <= allowed
        assert not set(task.train.tolist()) & set(task.heldout.tolist())
        assert [s.labels[i].item() for i in task.train[::12]] == list(task.classes)
        assert task.train_labels.tolist() == [i for i in range(5) for _ in range(12)]


def test_few_shot_tasks_use_only_novel_classes_and_separate_support_from_query():
    s = toy_set()
    d = divide_classes(s.num_classes, seed=0)
    tasks = few_shot_tasks(s, d.novel, way=5, shot=5, query=10, tasks=3, seed=0)
    for t in tasks:
        assert set(t.classes) <= set(d.novel)
        assert not set(t.support.tolist()) & set(t.query.tolist())
        assert len(t.support) == 25 and len(t.query) == 50
        for idx, label in zip(t.support.tolist(), t.support_labels.tolist()):
            assert s.labels[idx].item() == t.classes[label]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(way=7, shot=1, query=1), "way"),
        (dict(way=5, shot=15, query=10), "shot"),
        (dict(way=1, shot=1, query=1), "way"),
        (dict(way=5, shot=0, query=1), "shot"),
    ],
)
def test_impossible_few_shot_requests_name_the_fix(kwargs, words):
    s = toy_set(classes=30, per_class=20)
    d = divide_classes(s.num_classes, seed=0)
    with pytest.raises(LearngeneError, match=words):
        few_shot_tasks(s, d.novel, tasks=1, seed=0, **kwargs)


def test_source_stream_rejects_more_images_than_a_class_has():
    s = toy_set(per_class=10)
    d = divide_classes(s.num_classes, seed=0)
    with pytest.raises(LearngeneError, match="class .c0. of toy has 10 images, but a source task takes 8 training"):
        source_stream(s, d, tasks=1, classes_per_task=5, images_per_class=8, heldout_per_class=5, seed=0)
