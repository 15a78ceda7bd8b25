"""BN synchronized over data-parallel workers (bnlab.layers.sync_batchnorm), on 2 gloo
processes started and stopped by the test: with per-worker batch b it equals one process with
batch 2b (outputs, the parameters' averaged gradients, the running statistics; the input's
gradient W times the global loss's, as each worker's loss is the mean over its own slice), to
float64 rounding (1e-12: a few sums of 2b = 24 values of order 1); per-worker BN does not."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bnlab.distributed import world_size
from bnlab.layers.batchnorm import BatchNorm
from bnlab.layers.sync_batchnorm import SyncBatchNorm

WORKERS, TIGHT = 2, dict(rtol=1e-12, atol=1e-12)
LAYOUTS = {  # name: (global input shape, the batch dim, replicas)
    "N_C_HW": ((12, 3, 4, 4), 0, None),
    "KNC": ((2, 12, 5), 1, 2),
}


def _inputs(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 3
    return x, torch.randn(shape, generator=gen, dtype=torch.float64)


def _layer(cls, shape, replicas):
    features = shape[1] if replicas is None else shape[2]
    layer = cls(features, replicas=replicas).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
        layer.bias.normal_(generator=torch.Generator().manual_seed(2))
    return layer


def _step(layer, x, r):
    """One training forward and backward of loss = mean(y * r): y, dx, dgamma, dbeta and the
    running statistics."""
    x = x.clone().requires_grad_()
    y = layer(x)
    (y * r).mean().backward()
    return [
        y.detach(),
        x.grad,
        layer.weight.grad,
        layer.bias.grad,
        layer.running_mean,
        layer.running_var,
    ]


def _worker(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORKERS)
    try:
        results = {}
        for name, (shape, dim, replicas) in LAYOUTS.items():
            x, r = _inputs(shape)
            mine = [t.chunk(WORKERS, dim)[rank] for t in (x, r)]
            assert world_size() == WORKERS
            results[name] = {
                "sync": _step(_layer(SyncBatchNorm, shape, replicas), *mine),
                "local": _step(_layer(BatchNorm, shape, replicas), *mine),
            }
        torch.save(results, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_synchronized_bn_over_workers_equals_one_process_with_the_whole_batch(tmp_path):
    mp.start_processes(
        _worker,
        args=(f"file://{tmp_path}/rendezvous", str(tmp_path)),
        nprocs=WORKERS,
        start_method="spawn",
    )
    ranks = [torch.load(tmp_path / f"rank{w}.pt") for w in range(WORKERS)]
    for name, (shape, dim, replicas) in LAYOUTS.items():
        whole = _step(_layer(BatchNorm, shape, replicas), *_inputs(shape))
        y, dx, dgamma, dbeta, mean, var = whole
        sync = [ranks[w][name]["sync"] for w in range(WORKERS)]
        torch.testing.assert_close(torch.cat([s[0] for s in sync], dim), y, **TIGHT)
        torch.testing.assert_close(torch.cat([s[1] for s in sync], dim), dx * WORKERS, **TIGHT)
        torch.testing.assert_close(sum(s[2] for s in sync) / WORKERS, dgamma, **TIGHT)
        torch.testing.assert_close(sum(s[3] for s in sync) / WORKERS, dbeta, **TIGHT)
        for s in sync:  # every worker's running statistics: the whole batch's
            torch.testing.assert_close(s[4], mean, **TIGHT)
            torch.testing.assert_close(s[5], var, **TIGHT)
        x, r = _inputs(shape)
        for w in range(WORKERS):  # per-worker BN: BN over its own slice, not the whole batch
            local = ranks[w][name]["local"]
            alone = _step(
                _layer(BatchNorm, shape, replicas), *(t.chunk(WORKERS, dim)[w] for t in (x, r))
            )
            torch.testing.assert_close(local[0], alone[0], **TIGHT)
            assert not torch.allclose(local[0], y.chunk(WORKERS, dim)[w], atol=1e-3)


def test_in_one_process_synchronized_bn_is_plain_bn():
    shape, _, replicas = LAYOUTS["N_C_HW"]
    sync = _step(_layer(SyncBatchNorm, shape, replicas), *_inputs(shape))
    plain = _step(_layer(BatchNorm, shape, replicas), *_inputs(shape))
    for a, b in zip(sync, plain):
        assert torch.equal(a, b)
