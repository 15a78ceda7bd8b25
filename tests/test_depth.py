"""Depth as a model parameter: model.depth x model.width, pre-activation residual blocks, He's
init gain, and the per-layer gradient norms whose growth at initialization Yang et al. (2019)
predict for BN: sqrt(pi / (pi - 1)) = 1.21 per layer for a wide ReLU network."""

import math

import pytest
import torch
from conftest import ROOT, make_config

from bnlab.errors import ConfigError
from bnlab.layers.models import MLP, PreActivationBlock, build_model, replica_losses
from bnlab.training.data import DEBIAN_FASHION_MNIST, load_splits
from bnlab.training.evaluation import unit_percentiles
from bnlab.training.probes import gradient_norms, growth_factor

HE = f"model.init_gain={math.sqrt(2)}"


def _real_batch(n: int):
    """n training images and labels: Fashion-MNIST where it is, else the synthetic images."""
    try:
        if not (DEBIAN_FASHION_MNIST.is_dir() or (ROOT / "data" / "FashionMNIST").is_dir()):
            raise FileNotFoundError
        splits = load_splits("fashion_mnist", ROOT / "data")
    except Exception:
        splits = load_splits("synthetic", synthetic_train=2 * n)
    return splits.x_train[:n], splits.y_train[:n]


@pytest.mark.parametrize("norm,low,high", [("bn", 1.10, 1.35), ("none", 0.9, 1.1)])
def test_gradient_growth_per_layer_at_init_matches_the_mean_field_theory(norm, low, high):
    """30 ReLU layers of width 512, batch 512, He init: with BN the gradient norm grows by
    about 1.21 per layer from the last to the first; without BN it stays flat."""
    cfg = make_config(
        f"norm={norm}",
        "model.depth=30",
        "model.width=512",
        "model.activation=relu",
        HE,
        "trainer.replicas=2",
    )
    model = build_model(cfg, (784,), 10, seeds=[0, 1])
    x, y = _real_batch(512)
    norms = gradient_norms(model, x, y)
    assert len(norms) == 31  # 30 hidden layers and the head
    hidden = torch.stack([norms[f"layer{i}"] for i in range(2, 31)])
    factor = growth_factor(hidden)
    assert ((low <= factor) & (factor <= high)).all(), factor


def test_growth_factor_recovers_a_known_geometric_sequence():
    norms = torch.tensor([[1.3**-i, 0.8**-i] for i in range(12)])  # falls from layer to layer
    torch.testing.assert_close(growth_factor(norms), torch.tensor([1.3, 0.8]))


def test_growth_factor_fits_the_layers_it_is_given():
    layers = torch.tensor([2.0, 3.0, 7.0, 9.0])  # some layers under- or overflowed: left out
    norms = 1.4 ** -layers[:, None]
    torch.testing.assert_close(growth_factor(norms, layers), torch.tensor([1.4], dtype=norms.dtype))


def test_gradient_norms_whose_squares_overflow_float32_stay_finite():
    """An exploding gradient: entries near 1e25 are float32 numbers, their squares are not."""
    cfg = make_config("norm=none", "model.depth=2", "model.width=8", "model.activation=relu", HE)
    model = build_model(cfg, (16,), 3, seeds=[0])
    x, y = torch.randn(4, 16) * 1e25, torch.tensor([0, 1, 2, 0])
    norms = gradient_norms(model, x, y)
    first = norms["layer1"]
    assert torch.isfinite(first).all() and first.item() > 1e20
    model.zero_grad()
    replica_losses(model, x.unsqueeze(0), y.unsqueeze(0)).sum().backward()
    weight = model.blocks[0][0].weight.grad
    assert torch.isinf((weight**2).sum())  # summed in float32, the norm would be infinite
    torch.testing.assert_close(first, torch.linalg.vector_norm(weight.double()).reshape(1))


def test_depth_and_width_build_the_hidden_layers():
    cfg = make_config("model.depth=5", "model.width=32")
    model = build_model(cfg, (784,), 10, seeds=[0])
    assert [b[0].weight.shape[-1] for b in model.blocks] == [32] * 5
    with pytest.raises(ConfigError, match="leave model.hidden at its default"):
        make_config("model.depth=5", "model.hidden=[10,10]")
    with pytest.raises(ConfigError, match="model.residual=True: .* not model=cnn"):
        make_config("model=cnn", "model.residual=true")


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_residual_blocks_add_a_pre_activation_branch(norm):
    cfg = make_config(
        f"norm={norm}",
        "model.depth=3",
        "model.width=16",
        "model.residual=true",
        "model.activation=relu",
    )
    model = build_model(cfg, (20,), 4, seeds=[0, 1])
    assert not isinstance(model.blocks[0], PreActivationBlock)  # 20 -> 16: no skip
    assert all(isinstance(b, PreActivationBlock) for b in model.blocks[1:])
    h = torch.randn(2, 8, 16)
    branch = model.blocks[1].branch
    assert isinstance(branch[-1], type(model.head))  # norm, act, then the linear map
    torch.testing.assert_close(model.blocks[1](h), h + branch(h))
    percentiles = unit_percentiles(model, torch.randn(50, 20))  # captured inside the branch
    assert percentiles.shape == (2, 3)


def test_a_residual_bn_network_of_replicas_equals_separate_networks():
    kwargs = dict(
        hidden=(12, 12, 12),
        activation="relu",
        residual=True,
        init_gain=math.sqrt(2),
        norm=make_config().norm,
    )
    batched = MLP(10, 3, seeds=(4, 5), **kwargs)
    x, y = torch.randn(2, 16, 10), torch.randint(0, 3, (2, 16))
    losses = replica_losses(batched, x, y)
    for r, seed in enumerate((4, 5)):
        single = MLP(10, 3, seeds=(seed,), **kwargs)
        torch.testing.assert_close(replica_losses(single, x[r : r + 1], y[r : r + 1])[0], losses[r])


def test_growth_at_init_from_run_folders_is_the_growth_of_the_model_at_init(
    tmp_path, smoke_overrides
):
    """bnlab.results.depth reads the step-0 gradient norms a run recorded; they are the norms of the
    model as built, on the first step's batch: the same growth factor, for every rate of a
    grid (one initialization), and a diverged rate counted at chance in best_rates."""
    from bnlab.results.analysis import load_runs, runs_table
    from bnlab.results.depth import CHANCE, best_rates, dynamic_range, growth_at_init
    from bnlab.training.batches import BatchOrder, gather
    from bnlab.training.data import load_data
    from bnlab.training.train import run_job

    args = [
        *smoke_overrides,
        "model=mlp_relu",
        "norm=bn",
        "model.depth=8",
        "model.width=64",
        "trainer.replicas=2",
        "trainer.grad_norm_every=40",
        "optimizer.lr_grid=[0.1,1e30]",
    ]
    cfg = make_config(*args)
    run_job(cfg, tmp_path / "job")
    df = load_runs(tmp_path / "job")
    growth = growth_at_init(df).set_index(["optimizer.lr", "seed"])["growth"]

    data = load_data(cfg, torch.device("cpu"))
    model = build_model(cfg, data.input_shape, data.num_classes, seeds=[0, 1])
    idx = BatchOrder(len(data.x_train), 60, [0, 1], torch.device("cpu"), data.y_train).indices(1)
    norms = gradient_norms(model, gather(data.x_train, idx), gather(data.y_train, idx))
    expected = growth_factor(torch.stack([norms[f"layer{i}"] for i in range(2, 9)])).float()
    for lr in (0.1, 1e30):
        torch.testing.assert_close(
            torch.tensor([growth[(lr, 0)], growth[(lr, 1)]], dtype=torch.float32),
            expected,
            rtol=1e-4,
            atol=0,
        )
    assert (1.05 < expected).all()  # BN's explosion, even at width 64 and batch 60

    best = best_rates(df).iloc[0]
    assert best["optimizer.lr"] == 0.1 and best["seeds"] == 2
    diverged = df[df["optimizer.lr"] == 1e30].drop_duplicates("run")["status"]
    assert set(diverged) == {"diverged"}
    assert best["mean"] > CHANCE
    spread = dynamic_range(df).merge(runs_table(df)[["run", "seed", "optimizer.lr"]])
    at0 = spread[(spread.step == 0) & (spread["optimizer.lr"] == 0.1)].sort_values("seed")
    all_norms = torch.stack([norms[f"layer{i}"] for i in range(1, 10)])  # input .. head
    torch.testing.assert_close(
        torch.tensor(at0["range"].to_numpy(), dtype=torch.float32),
        (all_norms.max(0).values / all_norms.min(0).values).float(),
        rtol=1e-4,
        atol=0,
    )
