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
    """Each ghost batch's output is the plain model's on that sub-batch alone, from the state
    every ghost batch sees (the running statistics as they were before the step). Those
    statistics then move once: to the mean of where the three sub-batches alone would have
    moved them, (1 - mu) R + mu * mean(S_i), one step on Batch Renorm's clock; torch's layer,
    the reference, updates per ghost batch in turn, as three calls of it would."""
    extra = ["model.channels=[4,6]"] if model == "model=cnn" else []
    ghost, shape = _model(model, f"norm={kind}", "norm.ghost_batch=4", *extra)
    plain, _ = _model(model, f"norm={kind}", *extra)
    plain.load_state_dict(_unwrapped(ghost.state_dict()))
    x = torch.randn(2, 12, *shape, dtype=torch.float64)  # K = 2 replicas, batch 12
    out = ghost(x)
    alone = [copy.deepcopy(plain) for _ in range(3)]
    for net, start in zip(alone, (0, 4, 8)):
        torch.testing.assert_close(out[:, start : start + 4], net(x[:, start : start + 4]), **TIGHT)
    stats = {k: v for k, v in _unwrapped(ghost.state_dict()).items() if "running" in k}
    if kind == "torch":
        for start in (0, 4, 8):
            plain(x[:, start : start + 4])
        expected = plain.state_dict()
    else:
        states = [net.state_dict() for net in alone]
        expected = {k: sum(state[k] for state in states) / 3 for k in stats}
        counts = [v for k, v in ghost.state_dict().items() if k.endswith("num_batches_tracked")]
        assert counts and all(int(c) == 1 for c in counts)
    assert stats
    for key, value in stats.items():
        torch.testing.assert_close(value, expected[key], **TIGHT)
    layers = sum(isinstance(m, GhostBatch) for m in ghost.modules())
    assert layers == (3 if model == "model=mlp" else 2)


def test_population_statistics_are_collected_over_ghost_batches():
    """Algorithm 2 over the batches the network was normalized with: the population mean and
    variance of a ghost model equal those of the plain model fed the sub-batches one by one."""
    from bnlab.layers.batchnorm import population_statistics

    ghost, shape = _model("norm=bn", "norm.stats=population", "norm.ghost_batch=4")
    plain, _ = _model("norm=bn", "norm.stats=population")
    plain.load_state_dict(_unwrapped(ghost.state_dict()))
    batches = [torch.randn(2, 12, *shape, dtype=torch.float64) for _ in range(2)]
    population_statistics(ghost, batches)
    population_statistics(plain, [b[:, s : s + 4] for b in batches for s in (0, 4, 8)])
    ours = {k: v for k, v in _unwrapped(ghost.state_dict()).items() if "population" in k}
    assert ours
    for key, value in ours.items():
        torch.testing.assert_close(value, plain.state_dict()[key], **TIGHT)


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
