"""The convnets of the papers: the CIFAR ResNet (bnlab.layers.resnet) and VGG-11
(bnlab.layers.vgg): their published parameter counts, each normalization in them equal to
torch's layer in the same network, replicas equal to separate networks, SkipInit and Fixup as
their papers state them at initialisation, and runs through the trainer.

Equalities are checked in float64, where the only differences left are rounding of order
1e-16 per operation (a few hundred operations deep: 1e-12 is a wide margin)."""

import json
import math
import re

import pandas as pd
import pytest
import torch
from conftest import make_config
from torch import nn

from bnlab.config.schema import NormConfig
from bnlab.errors import ConfigError
from bnlab.layers.models import build_model
from bnlab.layers.resnet import (
    FIXUP_SCALAR,
    FIXUP_SCALAR_RATE,
    ResNet,
    fixup_scalar,
    shortcut,
)
from bnlab.training.batches import PAD, crop_and_flip
from bnlab.training.train import run_job

TIGHT = dict(rtol=1e-12, atol=1e-12)


def _net(kind="bn", seeds=(0,), init="none", blocks=1, channels=(4, 8, 8), **norm):
    net = ResNet(
        1,
        10,
        blocks=blocks,
        channels=channels,
        norm=NormConfig(kind=kind, **norm),
        residual_init=init,
        seeds=seeds,
    )
    return net.double()


def test_resnet20_has_the_papers_parameter_count():
    """He et al.'s CIFAR ResNet-20 (option A shortcuts): 0.27M parameters, 269,722 exactly."""
    net = ResNet(3, 10, blocks=3, norm=NormConfig(kind="bn"))
    assert sum(p.numel() for p in net.parameters()) == 269_722
    assert len(net.blocks) == 9 and net(torch.randn(2, 3, 32, 32)).shape == (1, 2, 10)


@pytest.mark.parametrize(("ours", "theirs"), [("bn", "torch"), ("group", None), ("layer", None)])
def test_each_normalization_equals_torchs_layer_in_the_same_network(ours, theirs):
    """Outputs and every gradient equal those of the same network with torch's BatchNorm2d /
    GroupNorm in place of ours (same weights)."""
    x = torch.randn(6, 1, 12, 12, dtype=torch.float64)
    mine = _net(ours, groups=2)
    if theirs:
        reference = _net(theirs)
    else:  # the same network, each norm swapped for nn.GroupNorm (LayerNorm: one group)
        reference = _net(ours, groups=2)
        groups = 2 if ours == "group" else 1
        for module in list(reference.modules()):
            for child_name, child in list(module.named_children()):
                if type(child).__name__ == "GroupNorm" and child.__module__.startswith("bnlab"):
                    swap = nn.GroupNorm(groups, child.weight.numel(), eps=1e-5).double()
                    setattr(module, child_name, swap)
    reference.load_state_dict(mine.state_dict(), strict=False)
    out, ref = mine(x), reference(x)
    torch.testing.assert_close(out, ref, **TIGHT)
    out.square().sum().backward()
    ref.square().sum().backward()
    mine_grads = dict(mine.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(mine_grads[name].grad, p.grad, **TIGHT, msg=name)


@pytest.mark.parametrize("kind", ["bn", "none", "group"])
def test_replicas_equal_separate_networks(kind):
    x = torch.randn(2, 5, 1, 12, 12, dtype=torch.float64)  # one batch per replica
    both = _net(kind, seeds=(3, 4), groups=2)
    out = both(x)
    for r, seed in enumerate((3, 4)):
        alone = _net(kind, seeds=(seed,), groups=2)
        torch.testing.assert_close(out[r], alone(x[r])[0], **TIGHT)


@pytest.mark.parametrize("init", ["skipinit", "fixup"])
def test_replicas_equal_separate_networks_with_their_own_scalars(init):
    """SkipInit's alpha and Fixup's biases and multipliers differ per replica (set to distinct
    values here, and every zero-initialised layer given weights): replica r of the batched
    network equals a network of its own with replica r's values."""
    x = torch.randn(2, 5, 1, 12, 12, dtype=torch.float64)
    both = _net("none", seeds=(3, 4), init=init, blocks=2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in both.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    out = both(x)
    for r, seed in enumerate((3, 4)):
        alone = _net("none", seeds=(seed,), init=init, blocks=2)
        with torch.no_grad():
            for mine, theirs in zip(alone.parameters(), both.parameters()):
                mine.copy_(theirs.reshape(2, -1)[r].reshape(mine.shape))  # replica r's block
        torch.testing.assert_close(out[r], alone(x[r])[0], **TIGHT)


def test_skipinit_starts_as_its_shortcuts():
    """alpha = 0 ends every residual branch: each block is relu(shortcut(h))."""
    net = _net("none", init="skipinit", blocks=2)
    x = torch.randn(4, 1, 12, 12, dtype=torch.float64)
    h = torch.relu(net.stem(x))
    for block in net.blocks:
        h = torch.relu(shortcut(h, 1, block.c_out, block.stride))
    logits = net.head(h.mean((2, 3)).unsqueeze(0))
    torch.testing.assert_close(net(x), logits, **TIGHT)
    assert all(float(b.alpha.detach().abs().sum()) == 0 for b in net.blocks)


def test_fixup_starts_at_zero_branches_and_rescaled_weights():
    """Zhang et al.: last layer of each branch and the head 0, the branch's first layer scaled
    by L^(-1/2) against the same draw unscaled; so every logit is 0 at initialisation."""
    fixup = _net("none", init="fixup", blocks=2)
    plain = _net("none", blocks=2)
    blocks = len(fixup.blocks)
    for a, b in zip(fixup.blocks, plain.blocks):
        assert float(a.conv2.weight.detach().abs().sum()) == 0
        # scaled in float32: the factor and the product rounded once each, 2^-24 relative each
        scaled = b.conv1.weight * blocks**-0.5
        torch.testing.assert_close(a.conv1.weight, scaled, rtol=2**-23, atol=0)
        assert a.conv1.bias is None
        torch.testing.assert_close(fixup_scalar(a.scale), torch.ones(1, dtype=a.scale.dtype))
    logits = fixup(torch.randn(3, 1, 12, 12, dtype=torch.float64))
    assert float(logits.detach().abs().max()) == 0.0


def test_fixups_scalars_learn_at_a_tenth_of_the_rate():
    """One SGD step at rate lr moves each scalar's value p by lr * FIXUP_SCALAR_RATE * dL/dp,
    every other parameter by lr * dL/dw (the paper's code: the scalars at lr / 10)."""
    net = _net("none", init="fixup", blocks=1)
    with torch.no_grad():  # a branch that is not zero, so the scalars get gradients
        for block in net.blocks:
            block.conv2.weight.normal_(0, 0.1)
        net.head.weight.normal_(0, 0.1)
    x, lr = torch.randn(8, 1, 12, 12, dtype=torch.float64), 0.5
    scalars = {"bias_stem", "bias_head"} | {
        f"blocks.{i}.{n}"
        for i in range(len(net.blocks))
        for n in ("bias1a", "bias1b", "bias2a", "bias2b", "scale")
    }
    params = dict(net.named_parameters())
    stored = torch.autograd.grad(net(x).square().mean(), list(params.values()))
    # dL/dp for a scalar p = q * FIXUP_SCALAR is dL/dq / FIXUP_SCALAR
    grads = {n: g / FIXUP_SCALAR if n in scalars else g for n, g in zip(params, stored)}
    before = {
        n: (fixup_scalar(p) if n in scalars else p).detach().clone() for n, p in params.items()
    }
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    net(x).square().mean().backward()
    opt.step()
    for name, p in net.named_parameters():
        value = fixup_scalar(p) if name in scalars else p
        rate = lr * (FIXUP_SCALAR_RATE if name in scalars else 1.0)
        torch.testing.assert_close(value.detach(), before[name] - rate * grads[name], **TIGHT)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.depth=9"], "model=resnet needs model.depth = 6n+2"),
        (["model.residual_init=fixup"], "trains without normalization: use norm=none"),
        (["model.channels=[4,8]"], "3 stages' widths"),
        (["trainer.probe_every=10"], "not yet a ResNet's"),
    ],
)
def test_bad_resnet_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config("model=resnet", *overrides)


def test_residual_init_belongs_to_the_resnet():
    with pytest.raises(ConfigError, match="applies to model=resnet only"):
        make_config("model.residual_init=skipinit", "norm=none")


@pytest.mark.parametrize(
    ("norm", "init", "augment"), [("bn", "none", True), ("none", "fixup", False)]
)
def test_a_resnet_trains_through_the_job(tmp_path, norm, init, augment):
    cfg = make_config(
        "model=resnet",
        "model.depth=8",
        "model.channels=[4,8,8]",
        f"norm={norm}",
        f"model.residual_init={init}",
        f"dataset.augment={augment}",
        "dataset=synthetic",
        "dataset.synthetic_train=600",
        "dataset.val_size=100",
        "trainer.steps=40",
        "trainer.eval_every=20",
        "trainer.progress=false",
        "trainer.replicas=2",
        "optimizer.lr=0.1",
    )
    summaries = run_job(cfg, tmp_path)
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    summary = json.loads((tmp_path / "seed=0" / "summary.json").read_text())
    assert math.isfinite(summary["final"]["train/loss"]) and summary["step"] == 40
    metrics = pd.read_csv(tmp_path / "seed=0" / "metrics.csv")
    captured = metrics[metrics.split == "relu_input"]  # the last ReLU's input, unit 0
    assert set(captured.metric) == {"p15", "p50", "p85"} and captured.value.notna().all()


def _vgg(kind="bn", seeds=(0,), channels="[4,8,8,16,16]"):
    cfg = make_config("model=vgg", f"norm={kind}", f"model.channels={channels}")
    return build_model(cfg, (1, 28, 28), 10, seeds).double()


def test_vgg11_has_the_cifar_parameter_count():
    """VGG-11 with BN on CIFAR-10 (one 512 -> 10 head): 9,231,114 parameters with the conv
    biases; 2,752 fewer here, where BN's beta replaces them (the paper's choice)."""
    cfg = make_config("model=vgg", "norm=bn")
    net = build_model(cfg, (3, 32, 32), 10, (0,))
    assert sum(p.numel() for p in net.parameters()) == 9_231_114 - 2_752
    assert len(net.blocks) == 8 and net(torch.randn(2, 3, 32, 32)).shape == (1, 2, 10)


def test_vgg_with_bn_equals_it_with_torchs_batchnorm_and_replicas_equal_separate_nets():
    x = torch.randn(2, 6, 1, 28, 28, dtype=torch.float64)  # padded to 32 inside
    mine, reference = _vgg("bn", seeds=(1, 2)), _vgg("torch", seeds=(1, 2))
    reference.load_state_dict(mine.state_dict(), strict=False)
    torch.testing.assert_close(mine(x), reference(x), **TIGHT)
    out = mine(x)
    for r, seed in enumerate((1, 2)):
        torch.testing.assert_close(out[r], _vgg("bn", seeds=(seed,))(x[r])[0], **TIGHT)


def test_a_vgg_trains_with_the_landscape_probes(tmp_path):
    cfg = make_config(
        "model=vgg",
        "model.channels=[4,8,8,16,16]",
        "norm=bn",
        "dataset=synthetic",
        "dataset.synthetic_train=600",
        "dataset.val_size=100",
        "trainer.steps=20",
        "trainer.eval_every=10",
        "trainer.probe_every=10",
        "trainer.probe_size=100",
        "trainer.grad_norm_every=10",
        "trainer.progress=false",
    )
    (summary,) = run_job(cfg, tmp_path)
    assert summary["status"] == "completed"
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    probes = set(metrics[metrics.split == "probe"].metric)
    assert {"beta_smoothness", "ics_cos_layer2", "loss_range"} <= probes
    assert {f"layer{i}" for i in range(1, 10)} <= set(metrics[metrics.split == "grad_norm"].metric)


def test_crop_and_flip_takes_a_window_of_the_padded_image_and_may_mirror_it():
    """Each augmented image is padded[dy:dy+H, dx:dx+W] for some 0 <= dy, dx <= 8, or that
    window mirrored; pixel values here name their (row, column), so the window is found."""
    h = w = 6
    grid = (torch.arange(h)[:, None] * 100 + torch.arange(w) + 1).double()  # 1.. (0: padding)
    images = grid.expand(2, 12, 1, h, w).clone()  # K = 2 replicas, 12 images each
    out = crop_and_flip(images, [5, 6], step=3)
    padded = torch.nn.functional.pad(grid, (PAD, PAD, PAD, PAD))
    windows = [padded[dy : dy + h, dx : dx + w] for dy in range(9) for dx in range(9)]
    candidates = windows + [win.flip(1) for win in windows]
    for image in out.reshape(-1, h, w):
        assert any(torch.equal(image, c) for c in candidates)
    assert torch.equal(out, crop_and_flip(images, [5, 6], step=3))  # a function of (seed, step)
    assert not torch.equal(out, crop_and_flip(images, [5, 6], step=4))
    assert not torch.equal(out[0], out[1])  # each replica its own draws
    many = crop_and_flip(grid.expand(1, 4000, 1, h, w).clone(), [7], step=1)
    mirrored = []
    for image in many[0, :, 0]:  # a row's image pixels (not the zero padding) run backwards
        row = next(r[r > 0] for r in image if int((r > 0).sum()) >= 2)
        mirrored.append(bool(row[0] > row[-1]))
    share = sum(mirrored) / len(mirrored)
    assert abs(share - 0.5) < 4 * (0.25 / len(mirrored)) ** 0.5  # 1/2, within 4 sd


def test_augmentation_needs_images():
    with pytest.raises(ConfigError, match="dataset.augment crops and flips images"):
        make_config("dataset.augment=true")


@pytest.mark.parametrize(
    ("model", "key"), [("cnn", "model.residual=true"), ("vgg", "model.depth=8")]
)
def test_a_key_of_another_model_is_named_in_one_line(model, key):
    with pytest.raises(ConfigError, match=rf"{key.replace('true', 'True')}: .* not model={model}"):
        make_config(f"model={model}", key)
