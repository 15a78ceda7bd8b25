"""Batch Normalization from scratch (Ioffe & Szegedy 2015), with a closed-form backward.

For every feature (a unit of a fully connected layer, or a channel of a feature map) the layer
normalizes over the m values that share that feature in a mini-batch: m = N for an (N, C)
input, m = N*H*W for an (N, C, H, W) feature map (one gamma/beta pair per channel).

Forward, training mode (per feature, over its m values x_1..x_m)::

    mu_B    = 1/m * sum_i x_i
    var_B   = 1/m * sum_i (x_i - mu_B)^2                   (biased variance)
    x_hat_i = (x_i - mu_B) / sqrt(var_B + eps)
    y_i     = gamma * x_hat_i + beta

Backward (dy_i = dL/dy_i), the closed form the custom autograd Function implements::

    dbeta  = sum_i dy_i
    dgamma = sum_i dy_i * x_hat_i
    dx_i   = gamma / (m * sqrt(var_B + eps)) * (m * dy_i - dbeta - x_hat_i * dgamma)

Inference uses fixed statistics instead of mu_B, var_B, selected by ``stats``:

* ``"ema"`` (PyTorch's convention): after each training batch
  ``running_mean = (1 - momentum) * running_mean + momentum * mu_B`` and
  ``running_var = (1 - momentum) * running_var + momentum * m / (m - 1) * var_B``
  (the running variance is unbiased); momentum 0.1 keeps 90% of the old value.
* ``"population"`` (the paper's Algorithm 2): over a pass of training mini-batches
  ``E[x] = mean of the batch means`` and ``Var[x] = m / (m - 1) * mean of the batch variances``;
  see :func:`population_pass` and :func:`population_statistics`.
* ``"batch"``: the batch statistics of the evaluated batch itself (no running statistics), to
  show the train/test mismatch that fixed statistics avoid.

Replicas: with ``replicas=K`` the layer holds K independent sets of gamma/beta/statistics and
takes an input of shape (K, N, C) (K models trained side by side as one batched model); each
replica is normalized over its own N values, exactly as K separate layers would.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor, nn

from bnlab.layers.norms import KNC, register_norm

STATS_MODES = ("ema", "population", "batch")


def feature_layout(
    x: Tensor, features: int, replicas: Optional[int], layer: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the dims a feature's statistics reduce over, the shape its parameters broadcast in)
    for ``x``: (N, C) -> over N; (N, C, H, W) -> over N, H, W; with K replicas (K, N, C) ->
    over N, per replica. ValueError naming ``layer`` for any other shape."""
    c = features
    if replicas is not None:
        if x.dim() == 3 and x.shape[0] == replicas and x.shape[2] == c:
            return (1,), (replicas, 1, c)
        expected = f"a ({replicas}, N, {c}) input (replicas, batch, features)"
    elif x.dim() == 2 and x.shape[1] == c:
        return (0,), (1, c)
    elif x.dim() == 4 and x.shape[1] == c:
        return (0, 2, 3), (1, c, 1, 1)
    else:
        expected = f"an (N, {c}) or (N, {c}, H, W) input"
    raise ValueError(f"{layer}({c}) expects {expected}, got shape {tuple(x.shape)}")


def moments(x: Tensor, dims: tuple[int, ...], m: int) -> tuple[Tensor, Tensor, Tensor]:
    """(mean, biased var, x - mean) of ``x`` over ``dims`` (m values per feature), kept with
    their reduced dims: mean = 1/m sum x, var = 1/m sum (x - mean)^2. Two passes (the mean,
    then the mean of the squared deviations): as exact as var_mean, and far faster on CPU,
    where var_mean over a non-innermost dimension is slow."""
    mean = x.sum(dims, keepdim=True) * (1.0 / m)  # sum, then scale: Tensor.mean is slower
    centred = x - mean
    return mean, (centred * centred).sum(dims, keepdim=True) * (1.0 / m), centred


def normalized(x: Tensor, dims: tuple[int, ...], m: int, eps: float) -> tuple[Tensor, ...]:
    """(mean, biased var, invstd, x_hat) of ``x`` over ``dims`` (:func:`moments`), invstd =
    1/sqrt(var + eps), x_hat = (x - mean) * invstd. Differentiable: the double backward
    recomputes it."""
    mean, var, centred = moments(x, dims, m)
    invstd = torch.rsqrt(var + eps)
    return mean, var, invstd, centred * invstd


def normalization_backward(
    dy: Tensor,
    x_hat: Tensor,
    scale: Tensor,
    dims: tuple[int, ...],
    m: int,
    whole_batch: Optional[Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dgamma, dbeta) of y = gamma * x_hat + beta, x_hat normalized over ``dims``
    (m values per feature), ``scale`` = gamma * invstd (invstd alone without gamma)::

        dbeta  = sum dy,    dgamma = sum dy * x_hat
        dx     = scale * dy - (scale * dbeta / m) - x_hat * (scale * dgamma / m)

    dgamma and dbeta keep their reduced dims. ``whole_batch`` (synchronized BN): (dbeta, dgamma)
    -> their sums over every worker's slice, which dx then uses (m counting all of them); the
    returned dgamma and dbeta stay this slice's. Under ``create_graph`` (grad mode on)
    out-of-place ops only, so that the backward can itself be differentiated (Hessian-vector
    products); otherwise the same kernels write one full-size buffer in place (an allocation
    costs as much as a pass over the data)."""
    dbeta = dy.sum(dims, keepdim=True)
    dx = dy * x_hat
    dgamma = dx.sum(dims, keepdim=True)
    sum_dy, sum_dy_xhat = (dbeta, dgamma) if whole_batch is None else whole_batch(dbeta, dgamma)
    if torch.is_grad_enabled():
        dx = torch.sub(dy * scale, sum_dy * scale, alpha=1.0 / m)
        return torch.addcmul(dx, x_hat, sum_dy_xhat * scale, value=-1.0 / m), dgamma, dbeta
    torch.mul(dy, scale, out=dx)
    dx.sub_(sum_dy * scale, alpha=1.0 / m)
    return dx.addcmul_(x_hat, sum_dy_xhat * scale, value=-1.0 / m), dgamma, dbeta


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch normalization with the closed-form backward in the module docstring.

    Inputs: ``x``; ``weight`` (gamma) and ``bias`` (beta) of shape ``shape`` (or None when the
    layer is not affine); ``eps``; the reduction ``dims``; m, the number of values per feature;
    ``view``, the shape in which parameters and statistics broadcast against ``x``; ``track``,
    None or a function called with the batch's ``mean`` and biased ``var`` (shape ``shape``)
    and m, which the module uses to update its running statistics. Output: ``y``.
    (Viewing and tracking inside the Function keeps views and extra outputs out of the
    autograd graph: at the paper's sizes this layer is bound by per-call overhead.)

    Every tensor it returns is freshly allocated and none is written in place: torch 2.11's
    compiler routes the gradient of a returned tensor that was written in place to the wrong
    output (pytorch#180642), silently. The backward is differentiable: under ``create_graph``
    it recomputes x_hat from the saved ``x`` with :func:`normalized`, so the double backward
    sees how x_hat and the statistics depend on x and gamma.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Optional[Tensor],
        bias: Optional[Tensor],
        eps: float,
        dims: tuple[int, ...],
        m: int,
        view: tuple[int, ...],
        shape: tuple[int, ...],
        track: Optional[Callable[[Tensor, Tensor, int], None]] = None,
    ):
        mean, var, invstd, x_hat = normalized(x, dims, m, eps)
        if weight is None:
            y, scale = x_hat, invstd
        else:
            gamma = weight.view(view)
            y, scale = torch.addcmul(bias.view(view), x_hat, gamma), invstd * gamma
        if track is not None:
            track(mean.view(shape), var.view(shape), m)
        ctx.save_for_backward(x, weight, x_hat, scale)
        ctx.args = eps, dims, m, view, shape
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, weight, x_hat, scale = ctx.saved_tensors
        eps, dims, m, view, shape = ctx.args
        if torch.is_grad_enabled():  # create_graph: recompute, differentiably, from x
            _, _, invstd, x_hat = normalized(x, dims, m, eps)
            scale = invstd if weight is None else invstd * weight.view(view)
        dx, dgamma, dbeta = normalization_backward(dy, x_hat, scale, dims, m)
        if weight is None:
            return dx, None, None, None, None, None, None, None, None
        return dx, dgamma.view(shape), dbeta.view(shape), *[None] * 6


@register_norm("bn")
class BatchNorm(nn.Module):
    """Batch normalization layer built on :class:`BatchNormFunction` (``norm.kind=bn``).

    Args:
        num_features: C, the number of features (units or channels).
        eps: added to the variance before the square root.
        momentum: weight of the newest batch in the running statistics, in (0, 1].
        affine: learn gamma (init 1) and beta (init 0); without it y = x_hat.
        stats: inference statistics, ``"ema"`` | ``"population"`` | ``"batch"``.
        replicas: K independent layers over a (K, N, C) input, or None for a plain layer.

    Shapes: (N, C) or (N, C, H, W) without replicas; (K, N, C) with replicas.
    Parameters and buffers have shape (C,), or (K, C) with replicas.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        stats: str = "ema",
        replicas: Optional[int] = None,
    ):
        super().__init__()
        if stats not in STATS_MODES:
            raise ValueError(f"stats must be one of {', '.join(STATS_MODES)}, got {stats!r}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.num_features = num_features
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = affine
        self.stats = stats
        self.replicas = replicas
        shape = (num_features,) if replicas is None else (replicas, num_features)
        if affine:
            self.weight = nn.Parameter(torch.ones(shape))
            self.bias = nn.Parameter(torch.zeros(shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.register_buffer("population_mean", torch.zeros(shape))
        self.register_buffer("population_var", torch.ones(shape))
        self.register_buffer("population_ready", torch.tensor(False))
        self._population_sums: Optional[list] = None

    batch_statistics = True  # trains on mini-batch statistics: needs batch >= 2

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> "BatchNorm":
        """The layer for ``features`` units of K = ``replicas`` models (see
        :mod:`bnlab.layers.norms`): a replica layer over (K, N, C) for the MLP, a plain one over
        K*C channels for the CNN."""
        options = dict(
            eps=norm.eps, momentum=norm.momentum, affine=norm.affine, stats=norm.stats.value
        )
        if layout == KNC:
            return cls(features, replicas=replicas, **options)
        return cls(replicas * features, **options)

    def extra_repr(self) -> str:
        rep = f", replicas={self.replicas}" if self.replicas is not None else ""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, stats={self.stats}{rep}"
        )

    def forward(self, x: Tensor) -> Tensor:
        dims, view = feature_layout(x, self.num_features, self.replicas, "BatchNorm")
        if self.training or self.stats == "batch":
            m = x.numel() // self.running_mean.numel()
            if m < 2:
                raise ValueError(
                    "BatchNorm needs more than one value per feature to compute batch statistics "
                    f"(got input of shape {tuple(x.shape)}); use a batch size of at least 2"
                )
            return BatchNormFunction.apply(
                x,
                self.weight,
                self.bias,
                self.eps,
                dims,
                m,
                view,
                self.running_mean.shape,
                self._track if self.training else None,
            )
        weight = self.weight.view(view) if self.affine else None
        bias = self.bias.view(view) if self.affine else None
        mean, var = (self.running_mean, self.running_var)
        if self.stats == "population":
            if not bool(self.population_ready):
                raise RuntimeError(
                    "BatchNorm(stats='population') has no population statistics yet: "
                    "run population_statistics(model, batches) before evaluating"
                )
            mean, var = self.population_mean, self.population_var
        # y = gamma * (x - mean) * invstd + beta, folded into one pass over x: y = x * a + b
        a = torch.rsqrt(var.view(view) + self.eps)
        if weight is not None:
            a = a * weight
        b = -mean.view(view) * a if bias is None else bias - mean.view(view) * a
        return torch.addcmul(b, x, a)

    def _track(self, mean: Tensor, var: Tensor, m: int) -> None:
        """Fold a training batch's statistics in (called inside the Function: no grad)."""
        if self._population_sums is not None:
            self._population_sums[0] += mean
            self._population_sums[1] += var
            self._population_sums[2] += 1
            self._population_sums[3] = m
            return
        torch._foreach_lerp_(
            [self.running_mean, self.running_var], [mean, var.mul(m / (m - 1))], self.momentum
        )
        self.num_batches_tracked.add_(1)


@contextlib.contextmanager
def one_update(layer: BatchNorm) -> Iterator[None]:
    """Fold the training-mode batches run inside into the running statistics as one: one EMA
    step towards the mean of their means and of their unbiased variances, and one count in
    ``num_batches_tracked`` (Batch Renorm's warmup clock). Ghost batches (:class:`GhostBatch
    <bnlab.layers.norm_layers.GhostBatch>`) use it so the running statistics move once per
    SGD step, whatever the number of ghost batches (as Keras's ``virtual_batch_size`` does);
    inside, every batch sees the running statistics as they were on entry. Inside a
    population pass it does nothing: that pass collects every batch itself."""
    if layer._population_sums is not None:
        yield
        return
    sums = layer._population_sums = [
        torch.zeros_like(layer.running_mean),
        torch.zeros_like(layer.running_var),
        0,
        0,
    ]
    try:
        yield
    finally:
        layer._population_sums = None
    sum_mean, sum_var, batches, m = sums
    if batches:
        with torch.no_grad():
            layer._track(sum_mean / batches, sum_var / batches, m)


@contextlib.contextmanager
def population_pass(layer: BatchNorm) -> Iterator[None]:
    """Accumulate Algorithm 2's statistics over the training-mode forwards run inside.

    The running (EMA) statistics are left untouched during the pass. On exit the layer holds
    ``population_mean`` = mean of the batch means and ``population_var`` = m / (m - 1) * the
    mean of the batch variances, where m is the number of values per feature in one batch.
    """
    layer._population_sums = [
        torch.zeros_like(layer.running_mean),
        torch.zeros_like(layer.running_var),
        0,
        0,
    ]
    try:
        yield
        sum_mean, sum_var, batches, m = layer._population_sums
        if batches == 0:
            raise RuntimeError("population_pass saw no training-mode batch")
        with torch.no_grad():
            layer.population_mean.copy_(sum_mean / batches)
            layer.population_var.copy_(sum_var / batches * (m / (m - 1)))
            layer.population_ready.fill_(True)
    finally:
        layer._population_sums = None


@torch.no_grad()
def population_statistics(model: nn.Module, batches) -> None:
    """Compute the paper's Algorithm 2 statistics for every :class:`BatchNorm` in ``model``.

    ``batches`` is an iterable of training inputs. The model runs each in training mode (batch
    statistics flow through the layers as they do in training) with dropout and other layers'
    randomness switched off, and without touching any running statistics; the model's own
    train/eval mode is restored afterwards.
    """
    layers = [mod for mod in model.modules() if isinstance(mod, BatchNorm)]
    was_training = {mod: mod.training for mod in model.modules()}
    with contextlib.ExitStack() as stack:
        for layer in layers:
            stack.enter_context(population_pass(layer))
        model.eval()
        for layer in layers:
            layer.train()
        try:
            for x in batches:
                model(x)
        finally:
            for mod, mode in was_training.items():
                mod.train(mode)
