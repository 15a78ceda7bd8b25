"""Fast paths of the training loop: each replaces one plain line of it with an equal one.

* :class:`CompiledLosses` replaces ``replica_losses(model, x, y)`` (``trainer.compile=true``):
  the forward pass and its loss, and so their backward, compiled by ``torch.compile`` (static
  shapes; a few seconds on the first call on CPU). The result equals eager up to float rounding.
  Where compiling fails (no C++ compiler, say) it warns once and computes eagerly.
* :func:`fused_sgd_step` replaces ``optimizer.step()`` for plain SGD (no momentum, no weight
  decay): ``w <- w - lr * grad`` for every parameter as one ``torch._foreach_add_``, the kernel
  ``SGD(foreach=True)`` runs (so the same numbers), without its per-call overhead.
* :func:`replica_sgd_step` is that step with one rate per replica (``optimizer.lr_grid``):
  w[r] <- w[r] - lr_r * grad[r]. The replicas of one rate are contiguous, so each rate is one
  ``_foreach_add_`` over those replicas' slices with that rate as its scalar: the kernel and
  the numbers of a separate run at that rate.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from bnlab.errors import first_line
from bnlab.layers.models import replica_losses

log = logging.getLogger(__name__)


class CompiledLosses:
    """``replica_losses`` compiled; called the same way, ``losses(model, x, y)``.

    Random layers (dropout, BN's noise) draw from torch's own generators, as in eager
    (``fallback_random``), so the compiled step can equal the eager one. ``failed`` says why
    it computes eagerly, where compiling failed.
    """

    def __init__(self) -> None:
        # One job per process is not guaranteed (Hydra's basic launcher runs a sweep's jobs
        # one after another in one process): start each job from an empty compile cache, so
        # that its graph is compiled once and never counts against the recompile limit.
        torch._dynamo.reset()
        # inductor imports cpp_extension, which warns "No CUDA runtime is found" on every
        # CPU-only machine: noise in a run's output, not news
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        self.losses = torch.compile(
            replica_losses, dynamic=False, options={"fallback_random": True}
        )
        self.first_call = True
        self.failed: Optional[str] = None

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if not self.first_call:
            return self.losses(model, x, y)
        self.first_call = False
        try:
            return self.losses(model, x, y)
        except Exception as exc:  # torch._dynamo raises many types; none of them is fatal here
            self.failed = f"torch.compile failed ({type(exc).__name__}: {first_line(exc)[:200]})"
            log.warning("trainer.compile: %s; training eagerly", self.failed)
            self.losses = replica_losses
            return self.losses(model, x, y)


@torch.no_grad()
def fused_sgd_step(optimizer: torch.optim.SGD) -> None:
    """``optimizer.step()`` of plain SGD: w <- w - lr * grad, one kernel for all parameters."""
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if params:
            torch._foreach_add_(params, [p.grad for p in params], alpha=-group["lr"])


@torch.no_grad()
def replica_sgd_step(params: list[nn.Parameter], spans: list[tuple[float, int, int]]) -> None:
    """Plain SGD with a rate per replica; ``spans``: (rate, first, end) replica ranges. Every
    parameter's first dimension is replica-major (K, ...) or (K * n, ...)."""
    k = spans[-1][2]
    rows = [(p, p.shape[0] // k) for p in params if p.grad is not None]
    for lr, first, end in spans:
        torch._foreach_add_(
            [p[first * n : end * n] for p, n in rows],
            [p.grad[first * n : end * n] for p, n in rows],
            alpha=-lr,
        )


def rate_spans(lrs: Sequence[float]) -> list[tuple[float, int, int]]:
    """Runs of equal rates in replica order: [0.1, 0.1, 1.0] -> [(0.1, 0, 2), (1.0, 2, 3)]."""
    spans: list[tuple[float, int, int]] = []
    for r, lr in enumerate(lrs):
        if spans and spans[-1][0] == lr:
            spans[-1] = (lr, spans[-1][1], r + 1)
        else:
            spans.append((lr, r, r + 1))
    return spans


def is_plain_sgd(optimizer: torch.optim.Optimizer) -> bool:
    if type(optimizer) is not torch.optim.SGD:
        return False
    return all(
        g["momentum"] == 0
        and g["weight_decay"] == 0
        and not g["maximize"]
        and not isinstance(g["lr"], Tensor)
        for g in optimizer.param_groups
    )


def optimizer_step(
    optimizer: torch.optim.Optimizer, replica_lrs: Optional[Sequence[float]] = None
) -> Callable[[], None]:
    """``optimizer.step``, or :func:`fused_sgd_step` in its place for plain SGD; with
    ``replica_lrs`` (one rate per replica, plain SGD only), :func:`replica_sgd_step`."""
    if replica_lrs is not None:
        if not is_plain_sgd(optimizer):
            raise ValueError("a rate per replica needs plain SGD")
        params = [p for g in optimizer.param_groups for p in g["params"]]
        return partial(replica_sgd_step, params, rate_spans(replica_lrs))
    return partial(fused_sgd_step, optimizer) if is_plain_sgd(optimizer) else optimizer.step
