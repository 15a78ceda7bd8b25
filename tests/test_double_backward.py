"""Second derivatives through every from-scratch normalization: the closed-form backwards are
differentiable, so Hessian-vector products (what the Hessian probes of later experiments use)
equal those through torch's own layers, in float64 to rounding (1e-9 of values of order 1),
and gradgradcheck passes on each Function."""

from __future__ import annotations

import pytest
import torch
from conftest import make_config
from torch import nn

from bnlab.layers.batchnorm import BatchNorm, BatchNormFunction
from bnlab.layers.models import build_model, replica_losses
from bnlab.layers.norms.batch_renorm import BatchRenorm
from bnlab.layers.norms.groupnorm import GroupNorm


def hessian_vector_products(loss, tensors, vectors):
    """(H v) for ``loss`` as a function of ``tensors``, by double backward."""
    grads = torch.autograd.grad(loss, tensors, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vectors))
    return torch.autograd.grad(dot, tensors)


def _compare_layers(ours, theirs, shape, seed=0):
    """HVP w.r.t. the input, gamma and beta of tanh(layer(x)) . w, ours against theirs."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_()
    w = torch.randn(shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for layer in (ours, theirs):
            layer.double()
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) + 0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
        theirs.load_state_dict(ours.state_dict(), strict=False)
    vectors = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in (x, x[0, :1])]
    results = []
    for layer in (ours, theirs):
        params = [x, layer.weight, layer.bias]
        vs = [vectors[0], *(torch.ones_like(p) * 0.3 for p in params[1:])]
        results.append(hessian_vector_products((torch.tanh(layer(x)) * w).sum(), params, vs))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        assert a.abs().max() > 1e-3  # a real second derivative, not zeros on both sides


@pytest.mark.parametrize("shape", [(12, 5), (6, 4, 3, 3)])
def test_batchnorm_hessian_vector_products_equal_torch(shape):
    theirs = nn.BatchNorm1d(shape[1]) if len(shape) == 2 else nn.BatchNorm2d(shape[1])
    _compare_layers(BatchNorm(shape[1]), theirs, shape)


@pytest.mark.parametrize("shape,groups", [((6, 8, 3, 3), 4), ((5, 6), 3)])
def test_group_norm_hessian_vector_products_equal_torch(shape, groups):
    _compare_layers(GroupNorm(shape[1], groups), nn.GroupNorm(groups, shape[1]), shape)


def test_layer_norm_hessian_vector_products_equal_torch():
    _compare_layers(GroupNorm(7, 1), nn.LayerNorm(7), (5, 7))


class PlainBatchRenorm(nn.Module):
    """Batch Renorm in plain autograd ops, r and d detached (the paper's stop-gradient), reading
    the moving averages of ``twin`` without updating them: the reference for its derivatives."""

    def __init__(self, twin: BatchRenorm):
        super().__init__()
        self.twin = twin
        self.weight, self.bias = twin.weight, twin.bias

    def forward(self, x):
        t = self.twin
        mean, var = x.mean(0), x.var(0, unbiased=False)
        sigma = torch.sqrt(t.running_var + t.eps)
        rmax, dmax = t.bounds()
        r = torch.clamp(torch.sqrt(var + t.eps) / sigma, 1 / rmax, rmax).detach()
        d = torch.clamp((mean - t.running_mean) / sigma, -dmax, dmax).detach()
        return ((x - mean) / torch.sqrt(var + t.eps) * r + d) * self.weight + self.bias


def test_batch_renorm_hessian_vector_products_equal_plain_autograd():
    """With r and d away from 1 and 0 (moving averages off the batch's statistics)."""
    ours = BatchRenorm(5, warmup=0).double()
    with torch.no_grad():
        ours.running_mean.fill_(0.5)
        ours.running_var.fill_(3.0)
    reference = PlainBatchRenorm(ours)
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(12, 5, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_()
    w = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    v = [
        torch.randn(12, 5, generator=gen, dtype=torch.float64),
        *[torch.full((5,), 0.3, dtype=torch.float64)] * 2,
    ]
    state = {k: t.clone() for k, t in ours.state_dict().items()}
    results = []
    for layer in (reference, ours):  # the reference first: it reads the averages unchanged
        params = [x, ours.weight, ours.bias]
        results.append(hessian_vector_products((torch.tanh(layer(x)) * w).sum(), params, v))
        ours.load_state_dict(state)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize(
    "shape,dims,view", [((6, 3), (0,), (1, 3)), ((3, 2, 2, 3), (0, 2, 3), (1, 2, 1, 1))]
)
def test_batchnorm_function_passes_gradgradcheck(shape, dims, view, affine):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    m = x.numel() // view[1]
    if affine:
        g = (torch.rand(view, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
        b = torch.randn(view, generator=gen, dtype=torch.float64, requires_grad=True)

        def fn(x, g, b):
            return BatchNormFunction.apply(x, g, b, 1e-5, dims, m, view, view)

        inputs = (x, g, b)
    else:

        def fn(x):
            return BatchNormFunction.apply(x, None, None, 1e-5, dims, m, view, view)

        inputs = (x,)
    assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("layer", ["group", "renorm"])
def test_group_norm_and_batch_renorm_pass_gradgradcheck(layer):
    gen = torch.Generator().manual_seed(0)
    if layer == "group":
        module, shape = GroupNorm(6, 3).double(), (4, 6)
    else:
        # moving averages far from the batch's: r and d sit at their bounds (3 and -5), so
        # they are locally constant and the numerical derivatives see no change in them
        module, shape = BatchRenorm(3, warmup=0).double(), (6, 3)
        module.running_mean.fill_(10.0)
        module.running_var.fill_(0.01)
    with torch.no_grad():
        module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    buffers = {k: t.clone() for k, t in module.named_buffers()}

    def fn(x):
        with torch.no_grad():  # the same moving averages, so the same r and d, every call
            for name, buffer in module.named_buffers():
                buffer.copy_(buffers[name])
        return module(x)

    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_models_hessian_vector_product_with_our_bn_equals_torchs(model, tmp_path):
    """The same network (same seeds, same weights) with norm=bn and norm=torch, two replicas:
    H v of the summed loss w.r.t. every parameter, in float64."""
    overrides = ["model=cnn", "model.channels=[4,6]"] if model == "cnn" else []
    shape = (1, 8, 8) if model == "cnn" else (20,)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, *shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (2, 16), generator=gen)
    results = []
    for norm in ("bn", "torch"):
        cfg = make_config(f"norm={norm}", *overrides, f"data_dir={tmp_path}")
        net = build_model(cfg, shape, 10, [0, 1]).double()
        params = list(net.parameters())
        vs = [torch.full_like(p, 0.01) for p in params]
        hv = hessian_vector_products(replica_losses(net, x, y).sum(), params, vs)
        results.append([h.reshape(-1) for h in hv])  # (K, C) and torch's K*C: same order
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
