"""Model shapes, parameter counts, BN placement, dropped biases, replicas and paired init."""

import pytest
import torch
from torch import nn

from bnlab.config.schema import NormConfig
from bnlab.layers.batchnorm import BatchNorm
from bnlab.layers.models import CNN, MLP, BatchedLinear


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_paper_mlp_parameter_counts():
    """784-100-100-100-10: BN replaces each hidden bias (100) by gamma and beta (200)."""
    weights = 784 * 100 + 100 * 100 + 100 * 100 + 100 * 10
    no_bn = MLP(784, 10, norm=NormConfig(kind="none"))
    bn = MLP(784, 10, norm=NormConfig(kind="bn"))
    assert _count(no_bn) == weights + 3 * 100 + 10
    assert _count(bn) == weights + 3 * 200 + 10
    torch_bn = MLP(784, 10, norm=NormConfig(kind="torch"))
    assert _count(torch_bn) == _count(bn)


def test_mlp_output_shapes_shared_and_per_replica_inputs():
    model = MLP(20, 7, hidden=(16, 8), seeds=(0, 1, 2))
    x = torch.randn(5, 20)
    shared = model(x)  # one matrix product for all replicas
    assert shared.shape == (3, 5, 7)
    torch.testing.assert_close(shared, model(x.expand(3, 5, 20)))  # a batched product each
    assert model(torch.randn(3, 5, 20)).shape == (3, 5, 7)


@pytest.mark.parametrize("placement", ["before", "after"])
def test_placement_order_and_dropped_bias(placement):
    model = MLP(
        10,
        3,
        hidden=(6, 6),
        activation="relu",
        norm=NormConfig(kind="bn", placement=placement),
        dropout=0.1,
    )
    for block in model.blocks:
        types = [type(layer) for layer in block]
        if placement == "before":
            assert types == [BatchedLinear, BatchNorm, nn.ReLU, nn.Dropout]
            assert block[0].bias is None
        else:
            assert types == [BatchedLinear, nn.ReLU, BatchNorm, nn.Dropout]
            assert block[0].bias is not None
    assert model.head.bias is not None


def test_no_bn_mlp_keeps_biases_and_has_no_norm():
    model = MLP(10, 3, hidden=(4,), norm=NormConfig(kind="none"))
    assert [type(m) for m in model.blocks[0]] == [BatchedLinear, nn.Sigmoid]
    assert model.blocks[0][0].bias is not None


def test_same_seed_gives_same_weights_with_and_without_bn():
    bn = MLP(30, 4, hidden=(8, 8), norm=NormConfig(kind="bn"), seeds=(5,))
    plain = MLP(30, 4, hidden=(8, 8), norm=NormConfig(kind="none"), seeds=(5,))
    for a, b in zip(
        [blk[0] for blk in bn.blocks] + [bn.head], [blk[0] for blk in plain.blocks] + [plain.head]
    ):
        assert torch.equal(a.weight, b.weight)
    other = MLP(30, 4, hidden=(8, 8), seeds=(6,))
    assert not torch.equal(other.head.weight, bn.head.weight)


def test_init_std_default_is_fan_in_scaled_and_explicit_std_is_used():
    model = MLP(400, 10, hidden=(300,), seeds=(0,))
    assert model.blocks[0][0].weight.std().item() == pytest.approx(1 / 20, rel=0.02)
    fixed = MLP(400, 10, hidden=(300,), init_std=0.01, seeds=(0,))
    assert fixed.blocks[0][0].weight.std().item() == pytest.approx(0.01, rel=0.02)


@pytest.mark.parametrize("kind", ["none", "bn", "torch"])
def test_mlp_replicas_equal_separate_models(kind):
    seeds = (3, 4, 5)
    batched = MLP(12, 5, hidden=(9, 7), norm=NormConfig(kind=kind), seeds=seeds)
    x = torch.randn(3, 16, 12)
    out = batched(x)
    out.square().sum().backward()
    for r, seed in enumerate(seeds):
        single = MLP(12, 5, hidden=(9, 7), norm=NormConfig(kind=kind), seeds=(seed,))
        single_out = single(x[r])
        single_out.square().sum().backward()
        torch.testing.assert_close(out[r], single_out[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            batched.blocks[0][0].weight.grad[r],
            single.blocks[0][0].weight.grad[0],
            rtol=1e-4,
            atol=1e-5,
        )


@pytest.mark.parametrize("kind", ["none", "bn", "torch"])
def test_cnn_shapes_and_replicas_equal_separate_models(kind):
    seeds = (0, 1)
    batched = CNN(1, 28, 10, channels=(4, 6), norm=NormConfig(kind=kind), seeds=seeds)
    x = torch.rand(2, 5, 1, 28, 28)
    out = batched(x)
    assert out.shape == (2, 5, 10)
    assert batched(torch.rand(5, 1, 28, 28)).shape == (2, 5, 10)
    for r, seed in enumerate(seeds):
        single = CNN(1, 28, 10, channels=(4, 6), norm=NormConfig(kind=kind), seeds=(seed,))
        torch.testing.assert_close(out[r], single(x[r])[0], rtol=1e-4, atol=1e-5)


def test_cnn_bn_is_per_channel_and_drops_conv_bias():
    model = CNN(3, 32, 10, channels=(8, 16), norm=NormConfig(kind="bn"))
    conv, bn = model.blocks[0][0], model.blocks[0][1]
    assert conv.bias is None and isinstance(bn, BatchNorm) and bn.num_features == 8
    assert model(torch.rand(4, 3, 32, 32)).shape == (1, 4, 10)
    plain = CNN(3, 32, 10, channels=(8, 16), norm=NormConfig(kind="none"))
    assert _count(model) - _count(plain) == (2 * 8 - 8) + (2 * 16 - 16)


def test_capture_returns_unit0_preactivation_per_replica():
    model = MLP(6, 2, hidden=(5, 4), norm=NormConfig(kind="none"), seeds=(0, 1))
    model.capture = True
    x = torch.randn(11, 6)
    model(x)
    h = torch.sigmoid(model.blocks[0][0](x))
    expected = model.blocks[1][0](h)[..., 0]
    assert model.captured.shape == (2, 11)
    torch.testing.assert_close(model.captured, expected)
    cnn = CNN(1, 8, 3, channels=(2, 3), seeds=(0, 1, 2))
    cnn.capture = True
    cnn(torch.rand(4, 1, 8, 8))
    assert cnn.captured.shape == (3, 4 * 4 * 4)


def test_noisy_bn_shifts_and_scales_per_unit_in_training_only():
    torch.manual_seed(0)
    model = MLP(20, 5, hidden=(12,), norm=NormConfig(kind="bn", noise=1.0), seeds=(0, 1))
    plain = MLP(20, 5, hidden=(12,), norm=NormConfig(kind="bn"), seeds=(0, 1))
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 30, 20)
    model.eval()
    plain.eval()
    torch.testing.assert_close(model(x), plain(x))  # identity at inference
    model.capture = plain.capture = True
    model.train()
    model(x)
    noisy = model.captured  # (K, N) pre-activations of unit 0, after BN and noise
    model(x)
    assert not torch.equal(noisy, model.captured)  # new noise each step
    plain.train()
    plain(x)
    # a <- s * a + m with one (s, m) per unit and replica: an exact affine map of the clean one
    for r in range(2):
        fit = torch.linalg.lstsq(
            torch.stack([plain.captured[r], torch.ones(30)], 1), noisy[r].unsqueeze(1)
        ).solution.squeeze()
        scale, shift = fit.tolist()
        assert 1 <= scale <= 2 and -1 <= shift <= 1
        torch.testing.assert_close(
            scale * plain.captured[r] + shift, noisy[r], rtol=1e-4, atol=1e-4
        )
