"""Section 1c, sync: BN synchronized over 2 data-parallel workers (gloo, 2 processes on this
machine) against plain BN on each worker's slice, forward + backward, at the paper's layer (a
batch of 60 over 2 workers: 30 x 100) and at a CNN's first layer (30 x 16 x 28 x 28). The
difference is the two collectives a call (an all-gather of 2 x C statistics forward, an
all-reduce of 2 x C sums backward): their cost, as a ratio to the plain layer's time."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from bnlab.bench.context import Bench
from bnlab.bench.timing import forward_backward, interleaved
from bnlab.layers.batchnorm import BatchNorm
from bnlab.layers.sync_batchnorm import SyncBatchNorm
from bnlab.training.parallel import join_workers, spawn_workers

SHAPES = {"paper": (30, 100), "cnn": (30, 16, 28, 28)}  # per worker
WORKERS = 2


def time_layers(quick: bool, out: Path) -> None:
    """In each worker: both layers timed side by side (the same calls on every worker, so
    the collectives meet); worker 0 saves the medians to ``out``."""
    torch.set_num_threads(1)
    results = {}
    for name, shape in SHAPES.items():
        x, dy = torch.randn(shape, requires_grad=True), torch.randn(shape)
        contenders = {
            "plain": forward_backward(BatchNorm(shape[1]), x, dy),
            "sync": forward_backward(SyncBatchNorm(shape[1]), x, dy),
        }
        calls, rounds = (2, 3) if quick else (max(5, int(2e6 / x.numel())), 9)
        results[name] = interleaved(contenders, min(calls, 500), rounds)
    if torch.distributed.get_rank() == 0:
        torch.save(results, out)


def _worker(rank: int, rendezvous: Path, quick: bool, out: Path) -> None:
    join_workers(rank, WORKERS, rendezvous, "cpu", time_layers, quick, out)  # gloo


def run(bench: Bench) -> dict[str, object]:
    """``sync_layer_ratio_{paper,cnn}``: synchronized BN's time over plain BN's."""
    bench.out(f"\n1c. BN synchronized over {WORKERS} workers (gloo) vs per worker, fwd + bwd")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "timings.pt"
        codes = spawn_workers(
            WORKERS, Path(tmp) / "rendezvous", _worker, Path(tmp) / "rendezvous", bench.quick, out
        )
        if any(codes) or not out.exists():
            bench.out(f"   the workers stopped (exit codes {codes}): not measured")
            return {}
        timings = torch.load(out, weights_only=False)
    results = {}
    for name, shape in SHAPES.items():
        plain, sync = timings[name]["plain"], timings[name]["sync"]
        ratio = sync.median / plain.median
        bench.out(f"   {str(shape):20s} plain {plain.row()}   sync {sync.row()}   x{ratio:.2f}")
        results[f"sync_layer_ratio_{name}"] = round(ratio, 2)
    return results
