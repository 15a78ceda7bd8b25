"""Extending bnlab: a normalization, or a model, is one registered class plus one YAML, and it
trains through run.py without editing any other file."""

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT, make_config
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch import nn

from bnlab.errors import ConfigError
from bnlab.layers.model_registry import MODELS, model_names, register_model
from bnlab.layers.models import BatchedLinear
from bnlab.layers.norms import KNC, NORMS, norm_names, register_norm


class MeanOnlyNorm(nn.Module):
    """A toy normalization: subtract each unit's (channel's) batch mean; no scaling."""

    batch_statistics = True
    forward_calls = 0

    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    @classmethod
    def from_config(cls, norm, replicas, features, layout):
        return cls((1,) if layout == KNC else (0, 2, 3))

    def forward(self, x):
        MeanOnlyNorm.forward_calls += 1
        return x - x.mean(self.dims, keepdim=True)


@pytest.fixture
def toy_norm(tmp_path):
    """``norm=toy`` registered in this process, with its YAML in an extra config folder."""
    register_norm("toy")(MeanOnlyNorm)
    extra = tmp_path / "conf_extra"
    (extra / "norm").mkdir(parents=True)
    (extra / "norm" / "toy.yaml").write_text("# subtract the batch mean\nkind: toy\n")
    MeanOnlyNorm.forward_calls = 0
    yield extra
    NORMS.pop("toy", None)


def _run_py_main(argv, monkeypatch):
    """``python run.py <argv>`` in this process (so the test's registration counts)."""
    spec = importlib.util.spec_from_file_location("__main__", ROOT / "run.py")
    monkeypatch.setattr(sys, "argv", ["run.py", *argv])
    try:  # as __main__, the file runs its main() as `python run.py` does
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    finally:
        GlobalHydra.instance().clear()


def _train_smoke(tmp_path, extra, monkeypatch, *overrides) -> Path:
    """60 steps of the smoke experiment through run.py, with ``extra`` as a config folder
    too; the run folder, after checking its run completed."""
    run_dir = tmp_path / "run"
    _run_py_main(
        [
            "+experiment=smoke",
            *overrides,
            f"hydra.searchpath=[file://{extra}]",
            f"hydra.run.dir={run_dir}",
            f"data_dir={tmp_path / 'data'}",
            "trainer.steps=60",
            "trainer.eval_every=30",
            "trainer.progress=false",
        ],
        monkeypatch,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 60
    return run_dir


def test_a_toy_normalization_trains_through_run_py(tmp_path, toy_norm, monkeypatch):
    assert "toy" in norm_names()
    run_dir = _train_smoke(tmp_path, toy_norm, monkeypatch, "norm=toy")
    assert OmegaConf.load(run_dir / "config.yaml").norm.kind == "toy"
    # 3 hidden layers x (60 training steps + evaluations): the toy layer really ran
    assert MeanOnlyNorm.forward_calls >= 3 * 60
    assert "60,val,accuracy," in (run_dir / "metrics.csv").read_text()


def test_the_registry_decides_validation_and_layers(toy_norm):
    from bnlab.layers.models import MLP

    with pytest.raises(ConfigError, match="batch statistics"):  # batch_statistics = True
        make_config("norm.kind=toy", "trainer.batch_size=1")
    cfg = make_config("norm.kind=toy")
    model = MLP(20, 5, hidden=(8, 8), norm=cfg.norm, seeds=(0, 1))
    layers = [m for m in model.modules() if isinstance(m, MeanOnlyNorm)]
    assert len(layers) == 2
    assert model.blocks[0][0].bias is None  # a norm follows the linear map: no bias
    out = model.blocks[0][:2](torch.randn(2, 16, 20))
    assert torch.allclose(out.mean(1), torch.zeros(2, 8), atol=1e-6)


def test_a_class_without_from_config_is_refused():
    with pytest.raises(TypeError, match="from_config"):
        register_norm("broken")(type("Broken", (), {}))
    assert "broken" not in NORMS


class TinyNet(nn.Module):
    """A toy model: K replicas of in -> 16 tanh units -> classes."""

    flat_input = True
    forward_calls = 0

    def __init__(self, replicas: int, features: int, classes: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.replicas, self.capture, self.captured = replicas, False, None
        self.hidden = BatchedLinear(replicas, features, 16)
        self.head = BatchedLinear(replicas, 16, classes)
        for linear in (self.hidden, self.head):
            nn.init.normal_(linear.weight, std=linear.fan_in**-0.5)

    @classmethod
    def from_config(cls, cfg, input_shape, num_classes, seeds):
        return cls(len(seeds), input_shape[0], num_classes, seeds[0])

    def forward(self, x):
        TinyNet.forward_calls += 1
        pre = self.hidden(x)
        if self.capture:
            self.captured = pre[..., 0]
        return self.head(torch.tanh(pre))


@pytest.fixture
def toy_model(tmp_path):
    """``model=tiny`` registered in this process, with its YAML in an extra config folder."""
    register_model("tiny")(TinyNet)
    TinyNet.forward_calls = 0
    extra = tmp_path / "conf_extra"
    (extra / "model").mkdir(parents=True)
    (extra / "model" / "tiny.yaml").write_text("# one hidden layer of 16 tanh units\nname: tiny\n")
    yield extra
    MODELS.pop("tiny", None)


def test_a_toy_model_trains_through_run_py(tmp_path, toy_model, monkeypatch):
    assert "tiny" in model_names()
    run_dir = _train_smoke(tmp_path, toy_model, monkeypatch, "model=tiny", "norm=none")
    assert OmegaConf.load(run_dir / "config.yaml").model.name == "tiny"
    assert TinyNet.forward_calls >= 60  # it, not another model, trained the 60 steps
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(metrics[metrics.split == "train"].step) >= {50, 60}  # the loss, logged
    captured = metrics[metrics.split == "sigmoid_input"]  # from its `captured`, each evaluation
    assert set(captured.metric) == {"p15", "p50", "p85"} and captured.value.notna().all()


def test_an_unknown_model_is_one_line_naming_the_registered_ones():
    with pytest.raises(ConfigError, match="model.name must be one of mlp, cnn"):
        make_config("model.name=resnet9000")
