"""The ICS and loss-landscape probes (bnlab.training.probes) and their place in training."""

import json

import pandas as pd
import pytest
import torch
from conftest import make_config

from bnlab.config.schema import NormConfig
from bnlab.layers.models import CNN, MLP
from bnlab.training.probes import ETA_MULTIPLES, Probes, landscape_along_gradient, layer_of
from bnlab.training.train import run_job


def _batch(k=2, n=16, features=20, classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(k, n, features, generator=gen), torch.randint(
        0, classes, (k, n), generator=gen
    )


def _mlp(kind="bn", k=2, dropout=0.0):
    return MLP(
        20, 5, hidden=(12, 12, 12), norm=NormConfig(kind=kind), dropout=dropout, seeds=range(k)
    )


@pytest.mark.parametrize("kind", ["bn", "none"])
def test_ics_is_zero_when_earlier_layers_do_not_move_and_not_otherwise(kind):
    model = _mlp(kind)
    x, y = _batch()
    probes = Probes(model)
    frozen = probes.ics(x, y, lr=0.0)
    assert sorted(frozen) == sorted([f"ics_{m}_layer{i}" for m in ("l2", "cos") for i in (2, 3, 4)])
    for i in (2, 3, 4):
        assert torch.equal(frozen[f"ics_l2_layer{i}"], torch.zeros(2))
        torch.testing.assert_close(frozen[f"ics_cos_layer{i}"], torch.ones(2))
    moved = probes.ics(x, y, lr=0.5)
    for i in (2, 3, 4):
        assert (moved[f"ics_l2_layer{i}"] > 1e-6).all()
        assert (moved[f"ics_cos_layer{i}"] < 1).all()


def test_ics_of_layer_i_moves_only_layers_before_i():
    """Against a direct computation for one replica: step layers 1..i-1, then the grad of W_i."""
    model = _mlp("bn", k=1)
    x, y = _batch(k=1)
    lr = 0.3
    got = Probes(model).ics(x, y, lr)

    def grads(net):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x)[0], y[0]).backward()
        return {n: p.grad.clone() for n, p in net.named_parameters()}

    before = grads(model)
    twin = _mlp("bn", k=1)
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in twin.named_parameters():
            if name.startswith(("blocks.0.", "blocks.1.")):  # layers 1 and 2
                p -= lr * before[name]
    after = grads(twin)
    expected = (before["blocks.2.0.weight"] - after["blocks.2.0.weight"]).norm()
    torch.testing.assert_close(got["ics_l2_layer3"], expected.reshape(1), rtol=1e-4, atol=1e-7)


def test_probes_leave_weights_buffers_grads_and_rng_untouched():
    model = _mlp("bn", dropout=0.2)
    model.train()
    x, y = _batch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    Probes(model)(x, y, lr=0.5)
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(torch.get_rng_state(), rng)


def test_landscape_on_a_quadratic_matches_the_analytic_values():
    """L(w) = w^T A w / 2 per replica: g = A w, grad at w - eta g = A w - eta A^2 w, so the
    gradient change is eta ||A^2 w||, beta = ||A^2 w|| / ||A w|| and the losses are known."""
    torch.manual_seed(0)
    k, d, lr = 3, 4, 0.1
    q = torch.linalg.qr(torch.randn(d, d))[0]
    a = q @ torch.diag(torch.tensor([0.5, 1.0, 3.0, 8.0])) @ q.T
    w = {"w": torch.randn(k, d, dtype=torch.float64)}
    a = a.double()

    def loss_and_grad(params):
        v = params["w"]
        return 0.5 * ((v @ a) * v).sum(1), {"w": v @ a}

    got = landscape_along_gradient(loss_and_grad, w, lr, k)
    v = w["w"]
    g = v @ a
    etas = torch.tensor(ETA_MULTIPLES, dtype=torch.float64) * lr
    losses = torch.stack([0.5 * (((v - e * g) @ a) * (v - e * g)).sum(1) for e in etas])
    a2w = g @ a
    torch.testing.assert_close(got["loss"], 0.5 * (g * v).sum(1))
    torch.testing.assert_close(got["loss_range"], losses.max(0).values - losses.min(0).values)
    torch.testing.assert_close(got["grad_change"], etas.max() * a2w.norm(dim=1))
    torch.testing.assert_close(got["beta_smoothness"], a2w.norm(dim=1) / g.norm(dim=1))


def test_cnn_probes_have_one_value_per_replica_and_layer():
    model = CNN(1, 8, 4, channels=(3, 5), norm=NormConfig(kind="bn"), seeds=(0, 1))
    x = torch.rand(2, 6, 1, 8, 8)
    y = torch.randint(0, 4, (2, 6))
    out = Probes(model)(x, y, lr=0.1)
    assert {"ics_l2_layer2", "ics_l2_layer3", "loss_range", "beta_smoothness"} <= set(out)
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in out.values())


def test_layer_of_names_blocks_and_head():
    assert layer_of("blocks.0.0.weight", 3) == 1
    assert layer_of("blocks.2.1.bias", 3) == 3
    assert layer_of("head.weight", 3) == 4
    with pytest.raises(ValueError):
        layer_of("other.weight", 3)


def test_probes_do_not_change_the_training_run(tmp_path, smoke_overrides):
    """Metrics with probes on equal metrics with probes off, bit for bit (dropout included);
    the probes' cost is in summary.json."""
    common = [*smoke_overrides, "model.dropout=0.1", "trainer.replicas=2"]
    off, on = tmp_path / "off", tmp_path / "on"
    run_job(make_config(*common), off)
    run_job(make_config(*common, "trainer.probe_every=50", "trainer.grad_norm_every=40"), on)
    for seed in (0, 1):
        a = pd.read_csv(off / f"seed={seed}" / "metrics.csv")
        b = pd.read_csv(on / f"seed={seed}" / "metrics.csv")
        norms = b[b["split"] == "grad_norm"]
        assert sorted(norms["step"].unique()) == [0, 40, 80, 120]
        assert set(norms["metric"]) == {"layer1", "layer2", "layer3", "layer4"}
        assert (norms["value"] > 0).all()
        probes = b[b["split"] == "probe"]
        assert set(probes["metric"]) >= {
            "ics_l2_layer2",
            "ics_cos_layer4",
            "loss_range",
            "grad_change",
            "beta_smoothness",
        }
        assert sorted(probes["step"].unique()) == [0, 50, 100]
        trained = b[~b["split"].isin(["probe", "grad_norm"])].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, trained)
        summary = json.loads((on / f"seed={seed}" / "summary.json").read_text())
        assert 0 < summary["probe_time_share"] < 1
        assert "probe_time_share" not in json.loads(
            (off / f"seed={seed}" / "summary.json").read_text()
        )


def _dense_hessians(model, x, y):
    """Each replica's Hessian of its loss in its own parameters, formed entry by entry."""
    from torch.func import functional_call

    from bnlab.layers.models import replica_cross_entropy

    k = model.replicas
    params = {n: p.detach() for n, p in model.named_parameters()}
    rows = {n: p.reshape(k, -1) for n, p in params.items()}
    out = []
    for r in range(k):
        own = torch.cat([t[r] for t in rows.values()])

        def loss(flat, r=r):
            swapped, start = {}, 0
            for n, t in rows.items():
                t = t.clone()
                t[r] = flat[start : start + t.shape[1]]
                start += t.shape[1]
                swapped[n] = t.reshape(params[n].shape)
            return replica_cross_entropy(functional_call(model, swapped, (x,)), y)[r]

        out.append(torch.autograd.functional.hessian(loss, own))
    return out


@pytest.mark.parametrize("kind", ["bn", "none"])
def test_hessian_top_is_the_dense_hessians_top_eigenvalue_for_each_replica(kind):
    """Lanczos with full reorthogonalization spans the whole space after as many steps as a
    replica has parameters, so the estimate is then the exact top eigenvalue, to float64
    rounding; with 20 steps (the default), within 1% for these 3 x 4 x 4 x 3 MLPs."""
    torch.manual_seed(0)
    model = MLP(3, 3, hidden=(4, 4), norm=NormConfig(kind=kind), seeds=range(2)).double()
    model.train()
    x, y = _batch(n=8, features=3, classes=3)
    x = x.double()
    tops = [torch.linalg.eigvalsh(h)[-1] for h in _dense_hessians(model, x, y)]
    size = sum(p.numel() for p in model.parameters()) // 2
    exact = Probes(model).hessian_top(x, y, iters=size)
    torch.testing.assert_close(exact.double(), torch.stack(tops), rtol=1e-6, atol=1e-9)
    default = Probes(model).hessian_top(x, y)
    torch.testing.assert_close(default.double(), torch.stack(tops), rtol=1e-2, atol=1e-6)


def test_the_hessian_probe_leaves_the_training_run_alone(tmp_path, smoke_overrides):
    """trainer.hessian_every adds probe/hessian_top at its steps and changes nothing else, bit
    for bit (dropout included)."""
    common = [*smoke_overrides, "model.dropout=0.1", "trainer.replicas=2"]
    off, on = tmp_path / "off", tmp_path / "on"
    run_job(make_config(*common), off)
    run_job(make_config(*common, "trainer.hessian_every=60"), on)
    for seed in (0, 1):
        a = pd.read_csv(off / f"seed={seed}" / "metrics.csv")
        b = pd.read_csv(on / f"seed={seed}" / "metrics.csv")
        tops = b[b["split"] == "probe"]
        assert set(tops["metric"]) == {"hessian_top"} and (tops["value"] > 0).all()
        assert sorted(tops["step"].unique()) == [0, 60, 120]
        pd.testing.assert_frame_equal(a, b[b["split"] != "probe"].reset_index(drop=True))
