"""A fast path proves itself: its loss and gradients on one batch against the eager step's.

A fast path (``trainer.compile``, and any later one) replaces the plain forward-and-loss of the
training loop. Compilers have shipped silent gradient bugs (torch 2.11 routed the gradient of
an ``autograd.Function`` output written in place to the wrong slot, pytorch#180642; its
partitioner recomputes reads of buffers that the forward updates, pytorch#197039), so before
a job trains on a fast path, :func:`fast_path_error` runs one step three ways on the batch
the job trains on next (and on the one after, where the first fails), each from the same
parameters, buffers and random state:

* ``truth``: eager, on a float64 copy of the model and batch;
* ``eager``: eager, float32 (the plain path);
* ``fast``: the fast path, float32.

For the losses and each parameter's gradient, with e(a) = ||a - truth|| (Frobenius norm, over
the entries where truth and eager are finite: a diverged replica's are not)::

    e(fast) <= ROUNDING_FACTOR * e(eager) + ROUNDING_FLOOR * ||truth||

i.e. the fast path may round differently from eager (another order of the same sums), by up
to ROUNDING_FACTOR times eager's own float32 error on this very batch, which measures how
ill-conditioned the step is (BN with a large mean against the spread loses digits in both
paths); ROUNDING_FLOOR covers tensors that eager happens to get almost exact: 2^-14 is eight
times sqrt(n) * u, the random walk of n roundings of u = 2^-24, for sums of up to n = 16,384
terms. Measured on CPU with torch 2.14.1 (every norm; MLP of one and of two replicas, CNN of
two; inputs N(0, 1), N(3, 0.1^2) and N(10, 0.01^2)): e(fast) at most 3x e(eager) wherever
e(eager) is above 1e-6 of the norm, and at most 6.7e-6 of the norm where it is below
(compiled nn.BatchNorm2d's bias gradient, sums of 15,360 terms). The compiler bugs above were
1.8e-3 to 1.0 of the norm, with eager at 1e-7.

The fast path runs once before the three (a compiler may draw random numbers while it
compiles, which would shift the noise a random layer draws). The check leaves the model, its
buffers (running statistics) and the random generators as it found them, so a job that checks
trains exactly as one that does not, and its compiled step is compiled by then.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from bnlab.job.checkpoint import restore_rng, rng_state
from bnlab.layers.models import replica_losses

Losses = Callable[[nn.Module, Tensor, Tensor], Tensor]
ROUNDING_FACTOR = 16.0
ROUNDING_FLOOR = 2.0**-14


def step_values(losses: Losses, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """The losses (K,) and every parameter's gradient of their sum, by name (``.grad`` left
    untouched)."""
    names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    out = losses(model, x, y)
    grads = torch.autograd.grad(out.sum(), params, allow_unused=True)
    values = {"loss": out.detach()}
    values.update({n: g for n, g in zip(names, grads) if g is not None})
    return values


def _three_ways(model: nn.Module, x: Tensor, y: Tensor, fast: Losses) -> tuple[dict, ...]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = rng_state()
    try:
        step_values(fast, model, x, y)  # compile first: compiling may draw random numbers
        model.load_state_dict(state)
        restore_rng(rng)
        double = copy.deepcopy(model).double()
        truth = step_values(replica_losses, double, x.double(), y)
        del double
        restore_rng(rng)
        eager = step_values(replica_losses, model, x, y)
        model.load_state_dict(state)
        restore_rng(rng)
        quick = step_values(fast, model, x, y)
    finally:
        model.load_state_dict(state)
        restore_rng(rng)
    return truth, eager, quick


def batch_error(model: nn.Module, x: Tensor, y: Tensor, fast: Losses) -> Optional[str]:
    """None when ``fast(model, x, y)`` gives the eager step's losses and gradients to float
    rounding (the module docstring's rule); else one line naming the tensor furthest off."""
    truth, eager, quick = _three_ways(model, x, y, fast)
    worst, worst_ratio = None, 1.0
    for name, t in truth.items():
        if name not in quick:
            return f"{name}: no gradient on the fast path"
        e, f = eager[name].double(), quick[name].double()
        finite = torch.isfinite(t) & torch.isfinite(e)  # a diverged replica: left out
        t, e, f = t.double()[finite], e[finite], f[finite]
        e_eager, e_fast = (e - t).norm().item(), (f - t).norm().item()
        bound = ROUNDING_FACTOR * e_eager + ROUNDING_FLOOR * t.norm().item()
        ratio = e_fast / bound if bound > 0 else (math.inf if e_fast > 0 else 0.0)
        if not math.isfinite(e_fast) and math.isfinite(e_eager):
            ratio = math.inf
        if ratio > worst_ratio:
            worst, worst_ratio = (name, e_fast, e_eager, t.norm().item()), ratio
    if worst is None:
        return None
    name, e_fast, e_eager, size = worst
    return (
        f"{name} is {e_fast / max(size, 1e-300):.2g} off (relative, against float64; eager "
        f"float32 is {e_eager / max(size, 1e-300):.2g} off)"
    )


def fast_path_error(
    model: nn.Module, batches: Sequence[tuple[Tensor, Tensor]], fast: Losses
) -> Optional[str]:
    """None when the fast path passes :func:`batch_error` on any of ``batches`` (tried in
    order, up to the first it passes); else the first batch's error. Two batches, because a
    kink can fail one: a ReLU or max-pool input within rounding of its switch point makes the
    fast path take the other branch there than float64 does, and that one element's share of
    a gradient is beyond the bound (a CNN with BN's noise: on 1 of 8 random draws, a bias
    gradient 2e-3 off). A compiler bug is off on every batch."""
    first = None
    for x, y in batches:
        error = batch_error(model, x, y, fast)
        if error is None:
            return None
        first = first or error
    return first
