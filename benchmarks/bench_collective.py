"""Collective training cost on the `fast` preset, measured side by side in one process.

(a) step time with the criterion recorder / without it, beside a naive recorder that copies every
    gradient to numpy per batch (the official code's way);
(b) training throughput in images/s and as a fraction of this machine's measured dense matmul FLOP/s.
Usage: python benchmarks/bench_collective.py [--rounds 7] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from core.collective.config import preset
from core.collective.criterion import EpochRecorder
from core.collective.network import NetSpec, build
from core.collective.widening import apply_schedule
from core.seeding import generator


class NaiveRecorder:
    """Per batch, copy each weight gradient to numpy and count there (what hook-based code does)."""

    def __init__(self, layers, tau: float) -> None:
        self.layers, self.tau = layers, tau
        self.counts = {name: 0.0 for name in layers}

    def observe(self) -> None:
        for name, module in self.layers.items():
            g = module.weight.grad.detach().cpu().numpy()
            self.counts[name] += float((g > self.tau).mean())


def fast_net(batch: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The `fast` preset's network after its widening schedule, with one batch of glyph-sized inputs."""
    c = preset("fast")
    spec = NetSpec(1, c.image_size, c.widths, c.pool_after, c.hidden, c.classes_per_task, c.dropout)
    net = build(spec, 0)
    for t in range(c.tasks):
        apply_schedule(net, c.widening, t, generator=generator(0, t))
    x = torch.randn(batch, 1, c.image_size, c.image_size)
    y = torch.randint(0, c.classes_per_task, (batch,))
    return net, x, y


def step_flops(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds of conv and linear layers in one forward pass, x2 for FLOPs, x3 for forward+backward."""
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            macs.append(output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1])
        elif isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return 3 * 2 * float(sum(macs))


def matmul_flops(n: int = 1024, repeats: int = 10) -> float:
    """Measured dense float32 matmul FLOP/s on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def time_steps(net, x, y, recorder_kind: str, steps: int, tau: float) -> float:
    """Seconds per training step (forward, backward, optional recorder, SGD)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    recorder = None
    if recorder_kind == "recorder":
        recorder = EpochRecorder(net.weight_layers(), tau)
    elif recorder_kind == "naive":
        recorder = NaiveRecorder(net.weight_layers(), tau)
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recorder is not None:
            recorder.observe()
        opt.step()
    if isinstance(recorder, EpochRecorder):
        recorder.result()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    config = preset("fast")
    net, x, y = fast_net(config.batch_size)
    kinds = ("none", "recorder", "naive")
    times = {k: [] for k in kinds}
    for k in kinds:
        time_steps(net, x, y, k, 5, config.tau)
    for _ in range(args.rounds):
        for k in kinds:
            times[k].append(time_steps(net, x, y, k, args.steps, config.tau))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: [r / b for r, b in zip(times[k], times["none"])] for k in kinds}
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, fast preset net after widening, batch "
        f"{config.batch_size}"
    )
    print(
        f"step time without recorder : {med['none'] * 1e3:7.2f} ms (median of {args.rounds} rounds x {args.steps} "
        "steps)"
    )
    print(
        f"step time with recorder    : {med['recorder'] * 1e3:7.2f} ms   ratio "
        f"{statistics.median(ratios['recorder']):.3f} (target <= 1.05)"
    )
    print(f"step time naive numpy copy : {med['naive'] * 1e3:7.2f} ms   ratio {statistics.median(ratios['naive']):.3f}")
    flops = step_flops(net, x)
    machine = matmul_flops()
    throughput = config.batch_size / med["recorder"]
    print(f"throughput with recorder   : {throughput:7.0f} images/s")
    print(
        f"training FLOP/s            : {flops / med['recorder'] / 1e9:7.2f} GFLOP/s = "
        f"{flops / med['recorder'] / machine:.1%} of measured matmul {machine / 1e9:.1f} GFLOP/s"
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
