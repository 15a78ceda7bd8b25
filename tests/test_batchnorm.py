"""The from-scratch BatchNorm against torch.nn.BatchNorm1d/2d, gradcheck, and the paper's math."""

import math

import pytest
import torch
from torch import nn

from bnlab.layers.batchnorm import BatchNorm, BatchNormFunction, population_statistics

SHAPES = [(8, 5), (60, 100), (3, 7), (4, 3, 5, 5), (16, 8, 4, 6), (2, 2, 1, 3)]


def _pair(shape, **kw):
    torch.manual_seed(sum(shape))
    ref = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1], **kw)
    ours = BatchNorm(shape[1], **kw)
    if ref.affine:
        with torch.no_grad():
            ref.weight.uniform_(0.5, 2.0)
            ref.bias.uniform_(-1.0, 1.0)
        ours.load_state_dict(ref.state_dict(), strict=False)
    return ours, ref


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_train_forward_and_backward_match_torch(shape, affine):
    ours, ref = _pair(shape, eps=1e-5, momentum=0.1, affine=affine)
    x = (torch.randn(shape) * 3 + 1.5).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    dy = torch.randn(shape)
    y.backward(dy)
    y_ref.backward(dy)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    if affine:
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(10, 4), (6, 3, 4, 4)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_running_stats_and_eval_match_torch(shape, momentum):
    ours, ref = _pair(shape, eps=1e-3, momentum=momentum)
    for step in range(7):
        x = torch.randn(shape) * (1 + step) + step
        ours(x)
        ref(x)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-5, atol=1e-6)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 7
    ours.eval()
    ref.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape,dims", [((6, 4), (0,)), ((3, 2, 3, 4), (0, 2, 3)), ((2, 5, 3), (1,))]
)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_float64(shape, dims, affine):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    view = [1] * len(shape)
    for d in range(len(shape)):
        if d not in dims:
            view[d] = shape[d]
    m = x.numel() // math.prod(view)
    if affine:
        gamma = (torch.rand(view, dtype=torch.float64) + 0.5).requires_grad_()
        beta = torch.randn(view, dtype=torch.float64, requires_grad=True)
        inputs = (x, gamma, beta)
        fn = lambda x, g, b: BatchNormFunction.apply(x, g, b, 1e-5, dims, m, view, view)  # noqa: E731
    else:
        inputs = (x,)
        fn = lambda x: BatchNormFunction.apply(x, None, None, 1e-5, dims, m, view, view)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """The gradcheck above can fail: drop one term of the closed form and it does."""
    original = BatchNormFunction.backward

    def broken(ctx, dy):
        dx, dgamma, dbeta, *rest = original(ctx, dy)
        return dx * 1.01, dgamma, dbeta, *rest

    monkeypatch.setattr(BatchNormFunction, "backward", staticmethod(broken))
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    g = torch.ones(1, 3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    fn = lambda x, g, b: BatchNormFunction.apply(x, g, b, 1e-5, (0,), 5, (1, 3), (1, 3))  # noqa: E731
    assert not torch.autograd.gradcheck(fn, (x, g, b), raise_exception=False)


@pytest.mark.parametrize("shape", [(32, 6), (8, 3, 5, 5)])
def test_identity_mapping_recovers_input(shape):
    """gamma = sqrt(Var[x] + eps), beta = E[x] undoes the normalization (the paper's argument)."""
    torch.manual_seed(1)
    x = torch.randn(shape) * 4 - 2
    dims = (0,) if len(shape) == 2 else (0, 2, 3)
    layer = BatchNorm(shape[1], eps=1e-5)
    with torch.no_grad():
        layer.weight.copy_(torch.sqrt(x.var(dims, unbiased=False) + 1e-5))
        layer.bias.copy_(x.mean(dims))
    torch.testing.assert_close(layer(x), x, rtol=1e-5, atol=1e-5)


def test_replicas_equal_separate_layers():
    torch.manual_seed(2)
    k, n, c = 3, 12, 5
    batched = BatchNorm(c, replicas=k, momentum=0.2)
    singles = [BatchNorm(c, momentum=0.2) for _ in range(k)]
    with torch.no_grad():
        batched.weight.uniform_(0.5, 1.5)
        batched.bias.uniform_(-1, 1)
        for r, s in enumerate(singles):
            s.weight.copy_(batched.weight[r])
            s.bias.copy_(batched.bias[r])
    x = torch.randn(k, n, c, requires_grad=True)
    y = batched(x)
    y.pow(2).sum().backward()
    for r, s in enumerate(singles):
        xr = x[r].detach().clone().requires_grad_()
        yr = s(xr)
        yr.pow(2).sum().backward()
        torch.testing.assert_close(y[r], yr)
        torch.testing.assert_close(x.grad[r], xr.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.weight.grad[r], s.weight.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.running_var[r], s.running_var)


def test_population_stats_equal_algorithm_2():
    torch.manual_seed(3)
    layer = BatchNorm(4, stats="population")
    batches = [torch.randn(10, 4) * (i + 1) + i for i in range(5)]
    ema_before = layer.running_mean.clone()
    population_statistics(layer, batches)
    m = 10
    expected_mean = torch.stack([b.mean(0) for b in batches]).mean(0)
    expected_var = m / (m - 1) * torch.stack([b.var(0, unbiased=False) for b in batches]).mean(0)
    torch.testing.assert_close(layer.population_mean, expected_mean)
    torch.testing.assert_close(layer.population_var, expected_var)
    torch.testing.assert_close(layer.running_mean, ema_before)  # the pass leaves EMA alone
    assert layer.training  # mode restored
    layer.eval()
    x = torch.randn(7, 4)
    expected = (x - expected_mean) / torch.sqrt(expected_var + layer.eps)
    torch.testing.assert_close(layer(x), expected)


def test_population_stats_required_before_eval():
    layer = BatchNorm(3, stats="population").eval()
    with pytest.raises(RuntimeError, match="population statistics"):
        layer(torch.randn(4, 3))


def test_batch_stats_at_eval_use_the_evaluated_batch():
    layer = BatchNorm(3, stats="batch")
    layer(torch.randn(8, 3) + 10)  # moves the running mean, which batch mode must ignore
    layer.eval()
    x = torch.randn(8, 3) * 2 + 1
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + layer.eps)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("shape", [(1, 4), (1, 3, 1, 1)])
def test_one_value_per_feature_raises(shape):
    with pytest.raises(ValueError, match="more than one value per feature"):
        BatchNorm(shape[1])(torch.randn(shape))


def test_single_image_with_spatial_extent_is_fine():
    BatchNorm(3)(torch.randn(1, 3, 2, 2))  # m = 4 values per channel


@pytest.mark.parametrize(
    "kwargs,match",
    [({"eps": 0.0}, "eps"), ({"momentum": 0.0}, "momentum"), ({"stats": "median"}, "stats")],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNorm(3, **kwargs)
