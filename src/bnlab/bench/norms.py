"""Section 1b, norms: the normalizations beyond BN, eager, forward + backward, each against
torch's own layer (and Batch Renorm, which torch lacks, against nn.BatchNorm). Measured: the
median time per call, and each one's worst ratio to torch's over the shapes."""

from __future__ import annotations

import torch
from torch import nn

from bnlab.bench.context import Bench
from bnlab.bench.timing import forward_backward, interleaved
from bnlab.layers.norms.batch_renorm import BatchRenorm
from bnlab.layers.norms.groupnorm import GroupNorm

NORM_SHAPES = [(256, 1024), (128, 64, 32, 32)]


def norm_pairs(shape: tuple[int, ...]) -> dict[str, tuple[nn.Module, nn.Module, str]]:
    """name: (bnlab's layer, torch's, how torch's is named) for inputs of ``shape``."""
    c = shape[1]
    pairs = {
        "group_norm": (GroupNorm(c, 4), nn.GroupNorm(4, c), "nn.GroupNorm"),
        "batch_renorm": (
            BatchRenorm(c),
            (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c),
            "nn.BatchNorm",
        ),
    }
    if len(shape) == 2:
        pairs["layer_norm"] = (GroupNorm(c, 1), nn.LayerNorm(c), "nn.LayerNorm")
    return pairs


def run(bench: Bench) -> dict[str, object]:
    """``<name>_ratio``: each normalization's worst time over torch's."""
    quick, out = bench.quick, bench.out
    out("\n1b. Other normalizations, forward + backward, eager (vs torch's layer)")
    worst: dict[str, float] = {}
    for shape in NORM_SHAPES:
        x, dy = torch.randn(shape, requires_grad=True), torch.randn(shape)
        for name, (ours, theirs, label) in norm_pairs(shape).items():
            contenders = {
                label: forward_backward(theirs, x, dy),
                f"bnlab {name}": forward_backward(ours, x, dy),
            }
            calls = 2 if quick else max(1, min(500, int(2e6 / torch.Size(shape).numel())))
            timings = interleaved(contenders, calls, 3 if quick else 9)
            ratio = timings[f"bnlab {name}"].median / timings[label].median
            for who, timing in timings.items():
                out(f"   {str(shape):20s} {who:20s} {timing.row()}")
            out(f"   {str(shape):20s} {name}: x{ratio:.2f} of {label}")
            worst[f"{name}_ratio"] = max(worst.get(f"{name}_ratio", 0.0), ratio)
    return worst
