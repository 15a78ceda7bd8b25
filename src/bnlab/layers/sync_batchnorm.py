"""Batch normalization synchronized over data-parallel workers, from scratch.

W workers (``torch.distributed``'s default process group) each hold a slice of m values per
feature of one global batch of M = W * m. Plain BN in each worker normalizes over its own m
(what a data-parallel model without synchronization does); this layer normalizes over all M,
as one process with the whole batch would.

Forward, one collective: every worker's (mean_w, var_w) over its m values are all-gathered
and combined exactly (Chan et al.'s parallel variance, stable where the mean is large against
the spread, unlike a sum of squares)::

    mu  = 1/W sum_w mean_w
    var = 1/W sum_w (var_w + (mean_w - mu)^2)          (biased, over all M)

Backward, one collective: the closed form of :mod:`bnlab.layers.batchnorm` needs two sums over
the whole batch, ``sum dy`` and ``sum dy * x_hat``; each worker all-reduces its local sums::

    dx_i = gamma / (M * sqrt(var + eps)) * (M * dy_i - sum_all dy - x_hat_i * sum_all dy x_hat)

Each worker's loss is the mean over its own slice, so its dy is W times the global loss's;
the formula above then gives W times the global dx, and averaging the parameter gradients over
workers (as data-parallel training does) gives exactly the gradients of one process with the
whole batch. gamma's and beta's gradients are returned as the local sums, for the same
average. The running statistics are updated from mu and var (unbiased with M), the same on
every worker. Without an initialized process group (one process) the layer is plain BN. First
derivatives only (no double backward: the Hessian probes run in one process).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from bnlab.distributed import collective, world_size
from bnlab.layers.batchnorm import BatchNorm, feature_layout, moments, normalization_backward


class SyncBatchNormFunction(torch.autograd.Function):
    """Training-mode BN over every worker's slice (the module docstring); arguments as
    :class:`bnlab.layers.batchnorm.BatchNormFunction`'s, m the local count."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, dims, m, view, shape, track=None):
        workers = world_size()
        mean, var, centred = moments(x, dims, m)
        if workers > 1:
            local = torch.stack([mean.reshape(-1), var.reshape(-1)])
            gathered = [torch.empty_like(local) for _ in range(workers)]
            collective(dist.all_gather, gathered, local.contiguous())
            stats = torch.stack(gathered)  # (W, 2, features)
            mu = stats[:, 0].mean(0)
            var = (stats[:, 1] + (stats[:, 0] - mu) ** 2).mean(0).view(mean.shape)
            mean = mu.view(mean.shape)
            centred = x - mean
        invstd = torch.rsqrt(var + eps)
        x_hat = centred * invstd
        if weight is None:
            y, scale = x_hat, invstd
        else:
            gamma = weight.view(view)
            y, scale = torch.addcmul(bias.view(view), x_hat, gamma), invstd * gamma
        total = m * workers
        if track is not None:
            track(mean.view(shape), var.view(shape), total)
        ctx.save_for_backward(weight, x_hat, scale)
        ctx.args = dims, total, shape, workers
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        weight, x_hat, scale = ctx.saved_tensors
        dims, total, shape, workers = ctx.args
        reduce = all_workers_sums if workers > 1 else None
        dx, dgamma, dbeta = normalization_backward(dy, x_hat, scale, dims, total, reduce)
        if weight is None:
            return dx, None, None, None, None, None, None, None, None
        return dx, dgamma.view(shape), dbeta.view(shape), *[None] * 6


def all_workers_sums(dbeta: Tensor, dgamma: Tensor) -> tuple[Tensor, Tensor]:
    """The two per-feature sums over every worker's slice: one all-reduce."""
    sums = torch.stack([dbeta.reshape(-1), dgamma.reshape(-1)])
    collective(dist.all_reduce, sums)
    return sums[0].view(dbeta.shape), sums[1].view(dgamma.shape)


class SyncBatchNorm(BatchNorm):
    """:class:`~bnlab.layers.batchnorm.BatchNorm` whose training batches are every worker's
    slices together (``norm.sync``); eval mode and the arguments are BatchNorm's."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or world_size() == 1 or self._population_sums is not None:
            return super().forward(x)  # eval, one process, or a local statistics pass
        dims, view = feature_layout(x, self.num_features, self.replicas, "SyncBatchNorm")
        m = x.numel() // self.running_mean.numel()
        shape = self.running_mean.shape
        return SyncBatchNormFunction.apply(
            x, self.weight, self.bias, self.eps, dims, m, view, shape, self._track
        )
