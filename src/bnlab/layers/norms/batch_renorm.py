"""Batch Renormalization (Ioffe, 2017) from scratch, with a closed-form backward:
``norm.kind=batch_renorm``.

BN trains on the batch's statistics and infers with moving averages; when batches are small
or not i.i.d. the two differ. Batch Renorm corrects each training batch towards the moving
averages mu and sigma = sqrt(running_var + eps), per feature, over the m values of the batch::

    mu_B    = 1/m * sum_i x_i,      sigma_B = sqrt(1/m * sum_i (x_i - mu_B)^2 + eps)
    r       = clip(sigma_B / sigma, 1/rmax, rmax)          (treated as constants in the
    d       = clip((mu_B - mu) / sigma, -dmax, dmax)        backward pass)
    x_hat_i = (x_i - mu_B) / sigma_B * r + d
    y_i     = gamma * x_hat_i + beta

Backward, with z_i = (x_i - mu_B) / sigma_B (BN's x_hat) and r, d constant::

    dbeta  = sum_i dy_i,    dgamma = sum_i dy_i * x_hat_i
    dx_i   = r * gamma / (m * sigma_B) * (m dy_i - sum_j dy_j - z_i * sum_j dy_j z_j)

which is BN's backward times r. rmax and dmax start at 1 and 0 (plain BN) and grow linearly
to ``norm.rmax`` and ``norm.dmax`` over ``norm.renorm_warmup`` training steps. The moving
averages are kept as BN keeps them (``norm.momentum``; unbiased running variance), and
inference uses them, as BN with EMA statistics does. With rmax = 1 and dmax = 0 the layer
trains exactly as BN.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from bnlab.errors import ConfigError
from bnlab.layers.batchnorm import BatchNorm, feature_layout, normalized
from bnlab.layers.norms import KNC, register_norm


class BatchRenormFunction(torch.autograd.Function):
    """Training-mode Batch Renorm. ``correct(mean, var, m)`` is the module's: given the
    batch's statistics (viewed to ``shape``) it returns r and d from the moving averages and
    the bounds of this step, then folds the batch into the moving averages; r and d are
    constants for autograd. Returns fresh tensors only (see
    :class:`~bnlab.layers.batchnorm.BatchNormFunction`); the backward is differentiable (under
    ``create_graph`` it recomputes z and x_hat from the saved ``x``, r and d)."""

    @staticmethod
    def forward(ctx, x, weight, bias, correct, eps, dims, m, view, shape):
        mean, var, invstd, z = normalized(x, dims, m, eps)
        r, d = correct(mean.view(shape), var.view(shape), m)
        r, d = r.view(view), d.view(view)
        x_hat = z * r + d
        y = x_hat if weight is None else torch.addcmul(bias.view(view), x_hat, weight.view(view))
        ctx.save_for_backward(x, weight, z, x_hat, invstd, r, d)
        ctx.args = eps, dims, m, view
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, z, x_hat, invstd, r, d = ctx.saved_tensors
        eps, dims, m, view = ctx.args
        if torch.is_grad_enabled():  # create_graph: recompute, differentiably, from x
            _, _, invstd, z = normalized(x, dims, m, eps)
            x_hat = z * r + d
        g = dy if weight is None else dy * weight.view(view)
        scale = invstd * r / m
        dx = (m * g - g.sum(dims, keepdim=True) - z * (g * z).sum(dims, keepdim=True)) * scale
        if weight is None:
            return (dx, *[None] * 8)
        shape = weight.shape
        dgamma = (dy * x_hat).sum(dims).view(shape)
        dbeta = dy.sum(dims).view(shape)
        return (dx, dgamma, dbeta, *[None] * 6)


class BatchRenorm(BatchNorm):
    """BN whose training batches are renormalized towards the moving averages (module doc).

    Args as :class:`~bnlab.layers.batchnorm.BatchNorm` (EMA inference statistics), and ``rmax``,
    ``dmax``, ``warmup``: the final clipping bounds and the steps over which they grow from
    1 and 0. The training step count is ``num_batches_tracked``.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        replicas: Optional[int] = None,
        rmax: float = 3.0,
        dmax: float = 5.0,
        warmup: int = 5000,
    ):
        super().__init__(num_features, eps, momentum, affine, "ema", replicas)
        self.rmax, self.dmax, self.warmup = float(rmax), float(dmax), int(warmup)

    def bounds(self) -> tuple[Tensor, Tensor]:
        """(rmax, dmax) now: linear from (1, 0) to the final values over ``warmup`` steps
        (tensors on the layer's device: no host transfer per step)."""
        done = (self.num_batches_tracked.float() / max(self.warmup, 1)).clamp(max=1.0)
        if self.warmup == 0:
            done = torch.ones_like(done)
        return 1 + (self.rmax - 1) * done, self.dmax * done

    @torch.compiler.disable
    def forward(self, x: Tensor) -> Tensor:
        """Eager even inside a compiled model. r and d read the moving averages that the same
        forward then updates; torch.compile's partitioner (2.11 to 2.14 at least) may recompute
        r and d in the backward from the updated averages instead of saving them, so the
        compiled gradients came out up to 17% off eager's (which equal a plain-autograd
        reference with r and d detached), also with the bounds still at r = 1, d = 0, since
        the step count that sets them is updated too. The fix upstream is an open pull
        request, pytorch#197039."""
        if not self.training:
            return super().forward(x)
        dims, view = feature_layout(x, self.num_features, self.replicas, "BatchRenorm")
        m = x.numel() // self.running_mean.numel()
        if m < 2:
            raise ValueError(f"BatchRenorm needs batches of at least 2 (got {tuple(x.shape)})")
        shape = self.running_mean.shape
        args = (self._correct, self.eps, dims, m, view, shape)
        return BatchRenormFunction.apply(x, self.weight, self.bias, *args)

    def _correct(self, mean: Tensor, var: Tensor, m: int) -> tuple[Tensor, Tensor]:
        """r and d of the module docstring for this batch (then the batch is tracked)."""
        rmax, dmax = self.bounds()
        sigma = torch.sqrt(self.running_var + self.eps)
        r = torch.minimum(torch.maximum(torch.sqrt(var + self.eps) / sigma, 1 / rmax), rmax)
        d = torch.minimum(torch.maximum((mean - self.running_mean) / sigma, -dmax), dmax)
        self._track(mean, var, m)
        return r, d


@register_norm("batch_renorm")
class BatchRenormLayer:
    """``norm.kind=batch_renorm``: :class:`BatchRenorm` with the norm config's bounds."""

    batch_statistics = True

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> BatchRenorm:
        options = dict(
            eps=norm.eps,
            momentum=norm.momentum,
            affine=norm.affine,
            rmax=norm.rmax,
            dmax=norm.dmax,
            warmup=norm.renorm_warmup,
        )
        if layout == KNC:
            return BatchRenorm(features, replicas=replicas, **options)
        return BatchRenorm(replicas * features, **options)

    @classmethod
    def check_config(cls, cfg) -> None:
        for key, ok, rule in (
            ("rmax", cfg.norm.rmax >= 1, ">= 1"),
            ("dmax", cfg.norm.dmax >= 0, ">= 0"),
            ("renorm_warmup", cfg.norm.renorm_warmup >= 0, ">= 0"),
        ):
            if not ok:
                raise ConfigError(f"norm.{key} must be {rule} (got {getattr(cfg.norm, key)!r})")
        if cfg.norm.stats.value != "ema" or cfg.trainer.eval_trainmode:
            raise ConfigError(
                "norm.kind=batch_renorm infers with its moving averages: it needs "
                "norm.stats=ema and trainer.eval_trainmode=false"
            )
