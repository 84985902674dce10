"""Health measures use the probe batch and tolerance they document; precise BatchNorm uses the task's own images.

Expected values come from crafted networks whose answers are known by hand, or from the layer's own output
recomputed here, so a measure taken on the wrong images or at the wrong tolerance gives a different number.
"""

import dataclasses

import pytest
import torch

from core.collective.config import preset
from core.collective.criterion import CriterionLog
from core.collective.health import RANK_TOLERANCE, dead_fractions, effective_rank, measure
from core.collective.network import NetSpec, build
from core.collective.training import CollectiveTrainer, initial_spec
from core.data import datasets
from core.data.tasks import source_stream
from core.data.transforms import normalise


def pixel_net(image_size: int, hidden: tuple[int, ...]):
    """conv1 channel 0 passes each pixel, channel 1 its negative; BatchNorm is the identity; no pooling."""
    net = build(NetSpec(1, image_size, (2,), (), hidden, 2, 0.0), seed=0)
    with torch.no_grad():
        conv = net.convs["conv1"].conv
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[1, 0, 1, 1] = -1.0
        bn = net.convs["conv1"].bn
        bn.eps = 0.0
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_(1.0)
        bn.bias.zero_()
    return net.eval()


def test_dead_units_are_counted_on_the_probe_batch_and_not_on_the_training_images():
    net = pixel_net(4, (1,))
    probe = torch.rand(6, 1, 4, 4) * 0.4 + 0.1  # pixels in (0.1, 0.5): channel 1 is never active, channel 0 weakly
    train_x = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))  # both signs: no dead channel
    assert dead_fractions(net, probe)["conv1"] == 0.5 and dead_fractions(net, train_x)["conv1"] == 0.0
    health = measure(net, train_x, torch.zeros(6, dtype=torch.int64), probe, [0.0, 0.0, 0.0], 1.0)
    assert health.dead_fraction["conv1"] == 0.5
    assert health.dead_fraction == dead_fractions(net, probe)


def test_a_unit_active_in_any_chunk_of_the_probe_is_alive():
    net = pixel_net(4, (1,))
    probe = -torch.rand(7, 1, 4, 4) - 0.1
    probe[0] = -probe[0]  # channel 0 fires on the first image only, channel 1 on the others
    for chunk in (2, 3, 128):
        assert dead_fractions(net, probe, chunk=chunk)["conv1"] == 0.0
    assert dead_fractions(net, probe[1:], chunk=2)["conv1"] == 0.5


def test_feature_rank_is_the_probe_batchs_at_the_documented_tolerance_and_accuracy_the_training_images():
    net = pixel_net(2, ())  # features: the 4 positive pixels, then the 4 negated ones, after ReLU
    probe = torch.zeros(300, 1, 2, 2)  # more than one chunk of 256; zero images add no singular value
    probe[0, 0, 0, 1], probe[150, 0, 0, 0], probe[256, 0, 1, 0], probe[299, 0, 1, 1] = 5e-3, 1.0, 2e-3, 5e-4
    train_x = torch.randn(300, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert effective_rank(net.embed(train_x)) > 3
        train_y = net(train_x).argmax(1)
    train_y[:75] = 1 - train_y[:75]  # 225 of 300 right
    layers = net.weight_layers()
    health = measure(net, train_x, train_y, probe, [0.5, 0.25], 1.5)
    assert health.feature_rank == 3  # singular values 1, 5e-3, 2e-3 above 1e-3 of the largest; 5e-4 below
    assert health.train_accuracy == 0.75
    assert health.weight_norm == {name: float(module.weight.detach().norm()) for name, module in layers.items()}
    assert health.grad_norm == {"conv1": 0.5, "fc1": 0.25} and health.first_loss == 1.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_rank_counts_singular_values_above_one_thousandth_of_the_largest(dtype):
    assert RANK_TOLERANCE == 1e-3
    # singular values 4, 4 * 5e-3 (above 1e-3 of the largest, below 1e-2) and 4 * 5e-4 (below 1e-3, above 1e-4)
    matrix = 4 * torch.diag(torch.tensor([1.0, 5e-3, 5e-4], dtype=dtype))
    assert effective_rank(matrix) == 2
    assert effective_rank(matrix, tolerance=1e-2) == 1 and effective_rank(matrix, tolerance=1e-4) == 3
    rotation = torch.linalg.qr(torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    assert effective_rank((rotation @ matrix.double()).to(dtype)) == 2  # not only on diagonal matrices
    assert effective_rank(torch.zeros(4, 3, dtype=dtype)) == 0
    assert effective_rank(torch.tensor([[2.0]], dtype=dtype)) == 1


def small_trainer(precise_bn: bool) -> CollectiveTrainer:
    """A smoke-sized collective trainer over two source tasks of one epoch each."""
    config = dataclasses.replace(preset("smoke", tasks=2, epochs=1), precise_bn=precise_bn)
    imageset = datasets.load("glyphs", image_size=config.image_size, seed=0)
    stream = source_stream(
        imageset,
        config.division(imageset.class_names),
        tasks=2,
        classes_per_task=config.classes_per_task,
        images_per_class=config.images_per_class,
        heldout_per_class=config.heldout_per_class,
        seed=0,
        open_world_from=config.open_world_from,
    )
    net = build(initial_spec(config, imageset.channels), config.seed)
    log = CriterionLog.empty(net.spec.layer_names(), config.tau, config.epochs)
    return CollectiveTrainer(config, net, imageset, stream, log, [])


def conv1_statistics(trainer: CollectiveTrainer, task: int) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1's output mean and unbiased variance per channel over the task's training images (no augmentation)."""
    x = normalise(trainer.imageset.images[trainer.stream[task].train])
    with torch.no_grad():
        out = trainer.net.convs["conv1"].conv(x)
    return out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=True)


def test_precise_batchnorm_measures_the_statistics_of_the_task_just_trained():
    trainer = small_trainer(precise_bn=True)
    trainer.train_task(0)
    trainer.train_task(1)
    assert len(trainer.stream[1].train) <= 256  # one chunk: the cumulative average is the plain batch statistic
    bn = trainer.net.convs["conv1"].bn
    mean, var = conv1_statistics(trainer, 1)
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)
    other_mean, _ = conv1_statistics(trainer, 0)
    assert not torch.allclose(bn.running_mean, other_mean, rtol=1e-4, atol=1e-5)


def test_without_precise_batchnorm_the_statistics_stay_the_running_average_of_training():
    trainer = small_trainer(precise_bn=False)
    trainer.train_task(0)
    mean, _ = conv1_statistics(trainer, 0)
    assert not torch.allclose(trainer.net.convs["conv1"].bn.running_mean, mean, rtol=1e-4, atol=1e-5)
