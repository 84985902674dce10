"""Net2WiderNet widening: outputs preserved, BN statistics copied per channel, schedule arithmetic."""

from __future__ import annotations

import pytest
import torch

from core.collective.network import PAPER_SPEC_CIFAR, PAPER_WIDENING, ExpandableNet, NetSpec, build
from core.collective.widening import apply_schedule, widen, widths_after
from core.errors import LearngeneError

PAPER_FINAL_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
SMALL = NetSpec(in_channels=1, image_size=8, widths=(3, 4), pool_after=(1, 2), hidden=(5,), num_outputs=3, dropout=0.0)


def trained_looking(spec: NetSpec, seed: int) -> ExpandableNet:
    """A float64 net in eval mode whose biases, BN affine and running statistics are far from their defaults."""
    net = build(spec, seed).double().eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for block in net.convs.values():
            n = block.bn.num_features
            block.conv.bias.copy_(0.1 * torch.randn(n, generator=g, dtype=torch.float64))
            block.bn.weight.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
            block.bn.bias.copy_(0.2 * torch.randn(n, generator=g, dtype=torch.float64))
            block.bn.running_mean.copy_(0.3 * torch.randn(n, generator=g, dtype=torch.float64))
            block.bn.running_var.copy_(0.2 + torch.rand(n, generator=g, dtype=torch.float64))
            block.bn.num_batches_tracked.fill_(7)
    return net


def inputs(spec: NetSpec, n: int = 3) -> torch.Tensor:
    """A fixed batch of float64 noise images for `spec`."""
    g = torch.Generator().manual_seed(123)
    return torch.randn(n, spec.in_channels, spec.image_size, spec.image_size, generator=g, dtype=torch.float64)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference, relative to the largest magnitude of the reference `b`."""
    return float((a - b).abs().max() / b.abs().max())


def source_of(new: torch.Tensor, originals: torch.Tensor) -> int:
    """Index of the original channel whose filter equals `new` exactly."""
    matches = [i for i in range(len(originals)) if torch.equal(originals[i], new)]
    assert len(matches) == 1
    return matches[0]


def test_widening_keeps_the_networks_outputs_unchanged_through_the_whole_paper_schedule() -> None:
    net = trained_looking(PAPER_SPEC_CIFAR, 0)
    x = inputs(PAPER_SPEC_CIFAR, 2)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        before = net(x)
        assert before.abs().max() > 1e-3
        for task, layer, extra in PAPER_WIDENING:
            width = net.widths()[layer]
            assert apply_schedule(net, PAPER_WIDENING, task, generator=g) == [(layer, extra)]
            assert net.widths()[layer] == width + extra
            assert relative_error(net(x), before) < 1e-5, f"outputs changed after widening {layer} for task {task}"
    assert net.spec.widths == PAPER_FINAL_WIDTHS
    assert tuple(net.widths().values()) == PAPER_FINAL_WIDTHS


def test_widening_the_last_conv_maps_each_channel_to_its_block_of_fc1_inputs() -> None:
    assert SMALL.feature_size() == 2
    net = trained_looking(SMALL, 1)
    x = inputs(SMALL, 4)
    with torch.no_grad():
        before = net(x)
        widen(net, "conv2", 9, generator=torch.Generator().manual_seed(0))
        after = net(x)
    assert net.fcs["fc1"].in_features == (4 + 9) * 4
    assert net.features(x).shape == (4, 13 * 4)
    assert relative_error(after, before) < 1e-12


def test_widening_keeps_outputs_unchanged_in_training_mode_too() -> None:
    net = trained_looking(SMALL, 2).train()
    x = inputs(SMALL, 6)
    before = net(x).detach()
    widen(net, "conv1", 5, generator=torch.Generator().manual_seed(1))
    assert net.convs["conv1"].bn.training and net.training
    assert relative_error(net(x).detach(), before) < 1e-12


def test_every_new_bn_channel_carries_its_source_channels_statistics() -> None:
    net = trained_looking(PAPER_SPEC_CIFAR, 3)
    old = {k: v.clone() for k, v in net.convs["conv13"].state_dict().items()}
    widen(net, "conv13", 128, generator=torch.Generator().manual_seed(2))
    new = net.convs["conv13"].state_dict()
    assert torch.equal(new["bn.num_batches_tracked"], old["bn.num_batches_tracked"])
    for key in ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        assert torch.equal(new[key][:256], old[key]), key
    for j in range(256, 384):
        src = source_of(new["conv.weight"][j], old["conv.weight"])
        for key in ("conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
            assert new[key][j] == old[key][src], f"{key} of new channel {j}"


def test_the_next_layers_inputs_from_a_replicated_channel_add_up_to_the_original() -> None:
    net = trained_looking(PAPER_SPEC_CIFAR, 4)
    old_conv = net.convs["conv3"].conv.weight.detach().clone()
    old_next = net.convs["conv4"].conv.weight.detach().clone()
    widen(net, "conv3", 64, generator=torch.Generator().manual_seed(3))
    new_next = net.convs["conv4"].conv.weight
    sources = [source_of(net.convs["conv3"].conv.weight[j], old_conv) for j in range(128)]
    totals = torch.zeros_like(old_next)
    for j, src in enumerate(sources):
        totals[:, src] += new_next[:, j]
        assert torch.equal(new_next[:, j], new_next[:, src])
    torch.testing.assert_close(totals, old_next, rtol=1e-12, atol=1e-14)


def test_widening_with_noise_perturbs_the_new_channels_only() -> None:
    net = trained_looking(PAPER_SPEC_CIFAR, 5)
    x = inputs(PAPER_SPEC_CIFAR, 2)
    old = net.convs["conv5"].conv.weight.detach().clone()
    with torch.no_grad():
        before = net(x)
        widen(net, "conv5", 64, generator=torch.Generator().manual_seed(4), noise=0.01)
        after = net(x)
    weight = net.convs["conv5"].conv.weight.detach()
    assert torch.equal(weight[:128], old)
    spread = float(old.std())
    for j in range(128, 192):
        distances = (old - weight[j]).flatten(1).std(dim=1)
        assert not (distances == 0).any(), "a noisy copy duplicates an original exactly"
        assert 0.005 * spread < float(distances.min()) < 0.02 * spread
    assert 0 < relative_error(after, before) < 0.1


def test_widening_is_reproducible_from_the_generator_seed() -> None:
    nets = [build(SMALL, 0) for _ in range(2)]
    for net in nets:
        widen(net, "conv1", 6, generator=torch.Generator().manual_seed(9), noise=0.05)
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))


def test_widened_layers_stay_on_the_nets_dtype_and_train() -> None:
    net = build(SMALL, 0).double()
    widen(net, "conv2", 3, generator=torch.Generator().manual_seed(0))
    assert all(p.dtype == torch.float64 for p in net.state_dict().values() if p.is_floating_point())
    loss = net(inputs(SMALL)).square().mean()
    loss.backward()
    assert net.convs["conv2"].conv.weight.grad.shape == (7, 3, 3, 3)
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    "layer,extra", [("conv3", 1), ("fc1", 2), ("conv0", 1), ("bogus", 1), ("conv1", 0), ("conv2", -4)]
)
def test_widening_rejects_unknown_layers_and_empty_growth_and_leaves_the_net_alone(layer: str, extra: int) -> None:
    net = build(SMALL, 0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(LearngeneError):
        widen(net, layer, extra, generator=torch.Generator().manual_seed(0))
    assert net.spec == SMALL
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_widths_after_the_paper_schedule_are_the_papers_final_widths() -> None:
    assert widths_after(PAPER_SPEC_CIFAR.widths, PAPER_WIDENING, 20) == PAPER_FINAL_WIDTHS
    assert widths_after(PAPER_SPEC_CIFAR.widths, PAPER_WIDENING, 49) == PAPER_FINAL_WIDTHS
    assert widths_after(PAPER_SPEC_CIFAR.widths, PAPER_WIDENING, 0) == PAPER_SPEC_CIFAR.widths
    assert (
        widths_after(PAPER_SPEC_CIFAR.widths, PAPER_WIDENING, 4)
        == (64, 64, 128, 128, 256) + PAPER_SPEC_CIFAR.widths[5:]
    )


def test_widths_after_matches_a_network_widened_by_apply_schedule() -> None:
    schedule = ((1, "conv1", 2), (1, "conv2", 3), (3, "conv1", 1))
    net = build(SMALL, 0)
    g = torch.Generator().manual_seed(0)
    assert apply_schedule(net, schedule, 0, generator=g) == []
    for task in range(1, 4):
        apply_schedule(net, schedule, task, generator=g)
        assert net.spec.widths == widths_after(SMALL.widths, schedule, task)
    with pytest.raises(LearngeneError):
        widths_after(SMALL.widths, ((1, "conv3", 2),), 1)


def conv_bn_parameters(net: ExpandableNet) -> int:
    """Parameters of the conv blocks (conv weight and bias, BN affine)."""
    return sum(p.numel() for name, p in net.named_parameters() if name.startswith("convs."))


def test_the_paper_collective_model_has_the_papers_parameter_counts() -> None:
    net = build(PAPER_SPEC_CIFAR, 0)
    assert abs(net.num_parameters() - 5.11e6) < 0.01e6
    assert abs(conv_bn_parameters(net) - 3.73e6) < 0.01e6
    g = torch.Generator().manual_seed(0)
    for task in range(1, 21):
        apply_schedule(net, PAPER_WIDENING, task, generator=g)
    assert abs(net.num_parameters() - 16.36e6) < 0.01e6
    assert abs(conv_bn_parameters(net) - 14.72e6) < 0.01e6
