"""Section 1, layer: this project's BatchNorm against ``nn.BatchNorm1d/2d``, forward +
backward, per shape, eager and (where torch.compile works) compiled. Measured: the median time
per call and its ratio to nn.BatchNorm's; the worst ratio over the large shapes, and the ratio
at the paper's layer shape (Figure 1's batch x hidden width)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bnlab.bench.context import Bench
from bnlab.bench.timing import forward_backward, interleaved
from bnlab.layers.batchnorm import BatchNorm

LARGE_SHAPES = [(256, 1024), (128, 64, 32, 32), (32, 256, 8, 8)]


def layer_contenders(shape: tuple[int, ...], compiled: bool) -> dict[str, Callable[[], None]]:
    c = shape[1]
    x = torch.randn(shape, requires_grad=True)
    dy = torch.randn(shape)
    native = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c)
    layers = {"nn.BatchNorm": native, "bnlab eager": BatchNorm(c)}
    if compiled:
        layers["bnlab compiled"] = torch.compile(BatchNorm(c), dynamic=False)
    return {name: forward_backward(layer, x, dy) for name, layer in layers.items()}


def bench_layers(quick: bool, compiled: bool, small: tuple[int, int], out) -> dict[str, float]:
    """Ratios to nn.BatchNorm per shape; returns the worst large-shape and the small ratio."""
    out("\n1. BatchNorm layer, forward + backward (median, min-max over rounds)")
    worst: dict[str, float] = {}
    for shape in LARGE_SHAPES + [small]:
        numel = torch.Size(shape).numel()
        calls = max(1, min(2000, int(2e6 / numel))) if not quick else 2
        rounds = 3 if quick else 15
        timings = interleaved(layer_contenders(shape, compiled), calls, rounds)
        native = timings["nn.BatchNorm"].median
        kind = "small" if shape == small else "large"
        for name, timing in timings.items():
            ratio = timing.median / native
            out(f"   {str(shape):20s} {name:16s} {timing.row()}   x{ratio:.2f}")
            if name != "nn.BatchNorm":
                key = f"{kind}:{name}"
                worst[key] = max(worst.get(key, 0.0), ratio)
    return worst


def run(bench: Bench) -> dict[str, object]:
    """``bn_layer_ratio_{large,small}`` (and ``_compiled``): bnlab's time over nn.BatchNorm's."""
    small = (bench.fig1.batch, bench.fig1.hidden[0])  # the paper's layer: (60, 100)
    worst = bench_layers(bench.quick, bench.compiled, small, bench.out)
    results: dict[str, object] = {}
    for kind in ("large", "small"):
        results[f"bn_layer_ratio_{kind}"] = worst[f"{kind}:bnlab eager"]
        if bench.compiled:
            results[f"bn_layer_ratio_{kind}_compiled"] = worst[f"{kind}:bnlab compiled"]
    return results
