"""Ghost batch norm (norm.ghost_batch): each run of k examples is normalized on its own, as if
it were the whole batch; k = the batch is plain BN. Checked in float64 against the same layer
applied to each sub-batch alone (the same operations: equal to rounding, 1e-12 a wide margin)."""

import copy

import pytest
import torch
from conftest import make_config

from bnlab.errors import ConfigError
from bnlab.layers.models import build_model
from bnlab.layers.norm_layers import GhostBatch

TIGHT = dict(rtol=1e-12, atol=1e-12)


def _unwrapped(state: dict) -> dict:
    """A ghost model's state under the plain model's names (GhostBatch holds its ``layer``)."""
    return {k.replace(".layer.", "."): v for k, v in state.items()}


def _model(*overrides, seeds=(0, 1)):
    cfg = make_config("trainer.batch_size=12", *overrides)
    shape = (1, 12, 12) if "model=cnn" in overrides else (20,)
    return build_model(cfg, shape, 10, seeds).double(), shape


@pytest.mark.parametrize("kind", ["bn", "batch_renorm", "torch"])
@pytest.mark.parametrize("model", ["model=mlp", "model=cnn"])
def test_each_ghost_batch_is_normalized_as_a_batch_of_its_own(kind, model):
    extra = ["model.channels=[4,6]"] if model == "model=cnn" else []
    ghost, shape = _model(model, f"norm={kind}", "norm.ghost_batch=4", *extra)
    plain, _ = _model(model, f"norm={kind}", *extra)
    plain.load_state_dict(_unwrapped(ghost.state_dict()))
    x = torch.randn(2, 12, *shape, dtype=torch.float64)  # K = 2 replicas, batch 12
    out = ghost(x)
    for start in (0, 4, 8):
        alone = plain(x[:, start : start + 4])
        torch.testing.assert_close(out[:, start : start + 4], alone, **TIGHT)
    # the running statistics: three updates in turn, one per ghost batch, as plain's three calls
    stats = {k: v for k, v in _unwrapped(ghost.state_dict()).items() if "running" in k}
    assert stats and all(torch.equal(v, plain.state_dict()[k]) for k, v in stats.items())
    layers = sum(isinstance(m, GhostBatch) for m in ghost.modules())
    assert layers == (3 if model == "model=mlp" else 2)


def test_a_ghost_batch_of_the_whole_batch_is_plain_bn_and_eval_is_untouched():
    ghost, shape = _model("norm=bn", "norm.ghost_batch=12")
    plain, _ = _model("norm=bn")
    plain.load_state_dict(_unwrapped(ghost.state_dict()))
    x = torch.randn(2, 12, *shape, dtype=torch.float64)
    torch.testing.assert_close(ghost(x), plain(x), **TIGHT)
    trained = copy.deepcopy(ghost.state_dict())
    ghost.eval(), plain.eval()
    torch.testing.assert_close(ghost(x), plain(x), **TIGHT)
    assert all(torch.equal(v, ghost.state_dict()[k]) for k, v in trained.items())


@pytest.mark.parametrize(
    "overrides",
    [["norm.ghost_batch=5"], ["norm=layer", "norm.ghost_batch=4"], ["norm.ghost_batch=1"]],
)
def test_a_ghost_batch_that_cannot_be_is_one_line(overrides):
    with pytest.raises(ConfigError, match="norm.ghost_batch"):
        make_config("trainer.batch_size=12", *overrides)
