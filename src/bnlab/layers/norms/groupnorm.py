"""Group Normalization (Wu & He, 2018) and Layer Normalization (Ba, Kiros & Hinton, 2016) from
scratch, with a closed-form backward: ``norm.kind=group`` and ``norm.kind=layer``.

Both normalize each example on its own, so they do not depend on the batch: its C features
(channels) are split into G groups of C/G, and each group is normalized over its M values (its
C/G features, times H*W positions for a feature map). LayerNorm is the case G = 1: all of an
example's features together. Per example and group, over its M values x_1..x_M::

    mu      = 1/M * sum_j x_j
    var     = 1/M * sum_j (x_j - mu)^2                      (biased)
    x_hat_j = (x_j - mu) / sqrt(var + eps)
    y_j     = gamma_c * x_hat_j + beta_c                   (c: the feature of value j)

gamma and beta are per feature (channel), as in ``torch.nn.GroupNorm`` and, for the MLP's
features, ``torch.nn.LayerNorm``. Backward, with g_j = dL/dy_j * gamma_c (the gradient at
x_hat)::

    dbeta_c  = sum over examples and positions of feature c of dL/dy
    dgamma_c = sum over the same of dL/dy * x_hat
    dx_j     = 1 / (M * sqrt(var + eps)) * (M * g_j - sum_i g_i - x_hat_j * sum_i g_i x_hat_i)

the same form as BN's, with the sums over a group of one example instead of over the batch.
Training and inference compute the same (no running statistics).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from bnlab.errors import ConfigError
from bnlab.layers.norms import KNC, register_norm


def group_normalized(x: Tensor, groups: tuple, eps: float) -> tuple[Tensor, Tensor]:
    """(invstd, x_hat): ``x`` normalized over the last dim of its ``groups`` view (the module
    docstring's mu and var, biased), x_hat in ``x``'s shape. Differentiable: the double
    backward recomputes it."""
    grouped = x.reshape(groups)
    centred = grouped - grouped.mean(-1, keepdim=True)
    invstd = torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    return invstd, (centred * invstd).view_as(x)


class GroupNormFunction(torch.autograd.Function):
    """y = gamma * x_hat + beta, x_hat normalized over the last dim of ``x.view(groups)``.

    ``groups``: the (B, G, M) view of ``x`` whose last dim is normalized; ``view``: the shape
    in which gamma and beta broadcast against ``x``; ``dims``: the dims of ``x`` that dgamma
    and dbeta sum over. Returns a fresh tensor, written by no in-place op (see
    :class:`~bnlab.layers.batchnorm.BatchNormFunction`); the backward is differentiable (under
    ``create_graph`` it recomputes x_hat from the saved ``x``).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, groups: tuple, view: tuple, dims: tuple):
        invstd, x_hat = group_normalized(x, groups, eps)
        y = x_hat if weight is None else torch.addcmul(bias.view(view), x_hat, weight.view(view))
        ctx.save_for_backward(x, weight, x_hat, invstd)
        ctx.eps, ctx.groups, ctx.view, ctx.dims = eps, groups, view, dims
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, x_hat, invstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: recompute, differentiably, from x
            invstd, x_hat = group_normalized(x, ctx.groups, ctx.eps)
        g = dy if weight is None else dy * weight.view(ctx.view)  # dL/dx_hat
        g3, x3 = g.reshape(ctx.groups), x_hat.reshape(ctx.groups)
        m = g3.shape[-1]
        dx = m * g3 - g3.sum(-1, keepdim=True) - x3 * (g3 * x3).sum(-1, keepdim=True)
        dx = (dx * (invstd / m)).view_as(dy)
        if weight is None:
            return dx, None, None, None, None, None, None
        shape = weight.shape
        dgamma = (dy * x_hat).sum(ctx.dims).view(shape)
        dbeta = dy.sum(ctx.dims).view(shape)
        return dx, dgamma, dbeta, None, None, None, None


class GroupNorm(nn.Module):
    """Group normalization of ``num_features`` features (channels) in ``groups`` groups.

    Shapes: (N, C) or (N, C, H, W); with ``replicas`` K, (K, N, C), each replica with its own
    gamma and beta, of shape (K, C). For a CNN's K replicas as (N, K*C, H, W), build it with
    K*C features and K*G groups: a replica's groups are then its own.
    """

    def __init__(
        self,
        num_features: int,
        groups: int,
        eps: float = 1e-5,
        affine: bool = True,
        replicas: Optional[int] = None,
    ):
        super().__init__()
        if num_features % groups:
            raise ValueError(f"{groups} groups do not divide {num_features} features")
        self.num_features, self.groups, self.eps = num_features, groups, float(eps)
        self.replicas, self.affine = replicas, affine
        shape = (num_features,) if replicas is None else (replicas, num_features)
        self.weight = nn.Parameter(torch.ones(shape)) if affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if affine else None

    def extra_repr(self) -> str:
        rep = f", replicas={self.replicas}" if self.replicas is not None else ""
        return f"{self.num_features}, groups={self.groups}, eps={self.eps}{rep}"

    def forward(self, x: Tensor) -> Tensor:
        c, g = self.num_features, self.groups
        if self.replicas is not None and x.dim() == 3 and x.shape[::2] == (self.replicas, c):
            k, n, _ = x.shape
            groups, view, dims = (k * n, g, c // g), (k, 1, c), (1,)
        elif self.replicas is None and x.dim() in (2, 4) and x.shape[1] == c:
            groups, view = (x.shape[0], g, -1), (1, c) + (1,) * (x.dim() - 2)
            dims = (0,) + tuple(range(2, x.dim()))
        else:
            raise ValueError(f"{type(self).__name__}({c}) got an input of shape {tuple(x.shape)}")
        return GroupNormFunction.apply(x, self.weight, self.bias, self.eps, groups, view, dims)


@register_norm("group")
class GroupNormLayer:
    """``norm.kind=group``: :class:`GroupNorm` with ``norm.groups`` groups per replica."""

    batch_statistics = False
    absorbs_bias = False  # a per-unit bias before it is not cancelled (only a group's mean)

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> GroupNorm:
        return group_norm(norm.groups, norm, replicas, features, layout)

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.norm.groups < 1:
            raise ConfigError(f"norm.groups must be >= 1 (got {cfg.norm.groups})")
        widths = cfg.model.channels if cfg.model.name == "cnn" else cfg.model.hidden
        widths = [cfg.model.width] if cfg.model.depth is not None else widths
        bad = [w for w in widths if w % cfg.norm.groups]
        if bad:
            raise ConfigError(
                f"norm.groups={cfg.norm.groups} must divide every hidden width (not {bad[0]})"
            )


@register_norm("layer")
class LayerNormLayer:
    """``norm.kind=layer``: :class:`GroupNorm` with one group (all of an example's features)."""

    batch_statistics = False
    absorbs_bias = False

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> GroupNorm:
        return group_norm(1, norm, replicas, features, layout)


def group_norm(groups: int, norm, replicas: int, features: int, layout: str) -> GroupNorm:
    if layout == KNC:
        return GroupNorm(features, groups, norm.eps, norm.affine, replicas=replicas)
    return GroupNorm(replicas * features, replicas * groups, norm.eps, norm.affine)
