"""The normalizations beyond BN, each from scratch: GroupNorm and LayerNorm against torch's
(outputs, input and parameter gradients), Batch Renorm against BN at rmax=1, dmax=0, gradcheck
in float64 for each backward, and replicas equal to separate layers."""

import pytest
import torch
from conftest import make_config
from torch import nn

from bnlab.errors import ConfigError
from bnlab.layers.batchnorm import BatchNorm
from bnlab.layers.models import CNN, MLP, replica_losses
from bnlab.layers.norms.batch_renorm import BatchRenorm, BatchRenormFunction
from bnlab.layers.norms.groupnorm import GroupNorm, GroupNormFunction


def _grads(layer, x, dy):
    x = x.clone().requires_grad_()
    y = layer(x)
    y.backward(dy)
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


def _randomize(*layers):
    gen = torch.Generator().manual_seed(3)
    weight = torch.rand(layers[0].weight.shape, generator=gen) + 0.5
    bias = torch.randn(layers[0].bias.shape, generator=gen)
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)


@pytest.mark.parametrize(
    "shape,groups",
    [((8, 6, 5, 5), 3), ((4, 16, 7, 7), 4), ((5, 8, 3, 3), 1), ((6, 4, 2, 2), 4), ((7, 12), 3)],
)
def test_group_norm_equals_torch(shape, groups):
    ours, ref = GroupNorm(shape[1], groups, eps=1e-5), nn.GroupNorm(groups, shape[1], eps=1e-5)
    _randomize(ours, ref)
    x, dy = torch.randn(shape) * 3 + 1, torch.randn(shape)
    for a, b in zip(_grads(ours, x, dy), _grads(ref, x, dy)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(16, 10), (3, 100), (64, 7)])
def test_layer_norm_equals_torch(shape):
    ours, ref = GroupNorm(shape[1], 1), nn.LayerNorm(shape[1])
    _randomize(ours, ref)
    x, dy = torch.randn(shape) * 2 - 1, torch.randn(shape)
    for a, b in zip(_grads(ours, x, dy), _grads(ref, x, dy)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_replica_group_norm_equals_separate_layers():
    k, n, c, g = 3, 5, 8, 2
    batched = GroupNorm(c, g, replicas=k)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        batched.weight.copy_(torch.rand(k, c, generator=gen) + 0.5)
        batched.bias.copy_(torch.randn(k, c, generator=gen))
    x, dy = torch.randn(k, n, c), torch.randn(k, n, c)
    y, dx, dw, db = _grads(batched, x, dy)
    for r in range(k):
        single = GroupNorm(c, g)
        with torch.no_grad():
            single.weight.copy_(batched.weight[r])
            single.bias.copy_(batched.bias[r])
        for a, b in zip(_grads(single, x[r], dy[r]), (y[r], dx[r], dw[r], db[r])):
            torch.testing.assert_close(a, b)


def test_cnn_replicas_keep_their_own_groups():
    """K replicas' channels side by side, (N, K*C, H, W), with K*G groups = K separate layers."""
    k, c, g = 2, 6, 3
    ours = GroupNorm(k * c, k * g)
    x = torch.randn(4, k * c, 5, 5)
    y = ours(x)
    for r in range(k):
        torch.testing.assert_close(
            y[:, r * c : (r + 1) * c], nn.GroupNorm(g, c)(x[:, r * c : (r + 1) * c])
        )


@pytest.mark.parametrize(
    "shape,groups,view,dims",
    [
        ((4, 6), (4, 2, 3), (1, 6), (0,)),
        ((3, 4, 3, 3), (3, 2, -1), (1, 4, 1, 1), (0, 2, 3)),
    ],
)
def test_group_norm_backward_passes_gradcheck(shape, groups, view, dims):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.rand(shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.randn(shape[1], dtype=torch.float64, requires_grad=True)
    fn = lambda x, w, b: GroupNormFunction.apply(x, w, b, 1e-5, groups, view, dims)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))


def test_batch_renorm_backward_passes_gradcheck():
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w = torch.rand(4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    r, d = torch.rand(4, dtype=torch.float64) + 0.5, torch.randn(4, dtype=torch.float64)

    def correct(mean, var, m):  # the module's: r and d from the moving averages (fixed here)
        return r, d

    def fn(x, w, b):
        return BatchRenormFunction.apply(x, w, b, correct, 1e-5, (0,), 6, (1, 4), (4,))

    assert torch.autograd.gradcheck(fn, (x, w, b))


@pytest.mark.parametrize(
    "replicas,shape", [(None, (32, 10)), (None, (8, 6, 4, 4)), (3, (3, 16, 5))]
)
def test_batch_renorm_at_rmax_1_dmax_0_trains_as_bn(replicas, shape):
    c = shape[-1] if replicas else shape[1]
    renorm = BatchRenorm(c, rmax=1.0, dmax=0.0, warmup=0, replicas=replicas)
    bn = BatchNorm(c, replicas=replicas)
    _randomize(renorm, bn)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):  # running statistics move away from (0, 1): r and d stay clipped
        x, dy = torch.randn(shape, generator=gen) * 2 + 3, torch.randn(shape, generator=gen)
        for layer in (renorm, bn):
            layer.weight.grad = layer.bias.grad = None
        for a, b in zip(_grads(renorm, x, dy), _grads(bn, x, dy)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(renorm.running_mean, bn.running_mean)
    torch.testing.assert_close(renorm.running_var, bn.running_var)
    renorm.eval(), bn.eval()
    torch.testing.assert_close(renorm(x), bn(x))


def test_batch_renorm_corrects_towards_the_moving_averages():
    layer = BatchRenorm(3, rmax=2.0, dmax=0.5, warmup=0, affine=False)
    with torch.no_grad():
        layer.running_mean.fill_(1.0)
        layer.running_var.fill_(4.0)
    x = torch.randn(50, 3) * torch.tensor([1.0, 3.0, 10.0]) + torch.tensor([1.0, 2.0, -5.0])
    mu_b, sigma_b = x.mean(0), torch.sqrt(x.var(0, unbiased=False) + layer.eps)
    sigma = torch.sqrt(torch.tensor(4.0) + layer.eps)
    r = (sigma_b / sigma).clamp(0.5, 2.0)
    d = ((mu_b - 1.0) / sigma).clamp(-0.5, 0.5)
    torch.testing.assert_close(layer(x), (x - mu_b) / sigma_b * r + d, rtol=1e-5, atol=1e-5)


def test_batch_renorm_bounds_grow_over_the_warmup():
    layer = BatchRenorm(2, rmax=3.0, dmax=5.0, warmup=100)
    for steps, expected in ((0, (1.0, 0.0)), (50, (2.0, 2.5)), (500, (3.0, 5.0))):
        layer.num_batches_tracked.fill_(steps)
        assert tuple(float(b) for b in layer.bounds()) == expected


@pytest.mark.parametrize("kind", ["layer", "group", "batch_renorm"])
def test_replicas_of_each_norm_equal_separate_models(kind):
    norm = make_config(f"norm={kind}").norm
    x, y = torch.randn(2, 16, 12), torch.randint(0, 5, (2, 16))
    batched = MLP(12, 5, hidden=(8, 8), norm=norm, seeds=(0, 1))
    losses = replica_losses(batched, x, y)
    for r, seed in enumerate((0, 1)):
        single = MLP(12, 5, hidden=(8, 8), norm=norm, seeds=(seed,))
        torch.testing.assert_close(replica_losses(single, x[r : r + 1], y[r : r + 1])[0], losses[r])
    cnn = CNN(1, 8, 5, channels=(4, 8), norm=norm, seeds=(0, 1))
    assert replica_losses(cnn, torch.randn(2, 6, 1, 8, 8), torch.randint(0, 5, (2, 6))).shape == (
        2,
    )


def test_norm_config_checks():
    assert make_config("norm=layer", "trainer.batch_size=1").trainer.batch_size == 1
    with pytest.raises(ConfigError, match="norm.groups=3 must divide every hidden width"):
        make_config("norm=group", "norm.groups=3")
    with pytest.raises(ConfigError, match="batch_renorm"):
        make_config("norm=batch_renorm", "norm.stats=population")
    with pytest.raises(ConfigError, match="norm.rmax must be >= 1"):
        make_config("norm=batch_renorm", "norm.rmax=0.5")
    bn, group = (
        MLP(20, 5, hidden=(8,), norm=make_config(f"norm={k}").norm) for k in ("bn", "group")
    )
    assert bn.blocks[0][0].bias is None and group.blocks[0][0].bias is not None
