"""Every experiment composes; bad values fail with one line naming the key (and the choices)."""

import re

import pytest
from conftest import EXPERIMENTS, compose_cfg, make_config, run_cli
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from bnlab.config.schema import Config
from bnlab.errors import ConfigError


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    cfg = make_config(f"+experiment={experiment}")
    assert cfg.name == experiment
    assert cfg.trainer.steps > 0


def test_bn_vs_nobn_is_the_paper_network_swept_over_norm_with_three_seeds():
    cfg = compose_cfg("+experiment=bn_vs_nobn", hydra=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert dict(cfg.hydra.sweeper.params) == {"norm": "none,bn"}
    assert cfg.trainer.replicas == 3 and cfg.seed == 0  # seeds 0, 1, 2 as one batched model
    typed = make_config("+experiment=bn_vs_nobn")
    assert typed.model.hidden == [100, 100, 100] and typed.model.activation.value == "sigmoid"
    assert typed.trainer.batch_size == 60 and typed.trainer.steps == 50000
    assert typed.optimizer.name.value == "sgd" and typed.dataset.name.value == "fashion_mnist"
    assert "experiment" not in compose_cfg()  # `+experiment=` is how it is added


def test_defaults_are_the_paper_network_with_bn():
    cfg = make_config()
    assert cfg.norm.kind == "bn" and cfg.norm.placement.value == "before"
    assert cfg.norm.eps == 1e-5 and cfg.model.hidden == [100, 100, 100]


@pytest.mark.parametrize(
    "override,key",
    [
        ("norm.eps=0", "norm.eps"),
        ("norm.eps=-1e-5", "norm.eps"),
        ("norm.momentum=0", "norm.momentum"),
        ("norm.momentum=1.5", "norm.momentum"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("trainer.batch_size=1", "trainer.batch_size"),
        ("trainer.steps=0", "trainer.steps"),
        ("trainer.eval_every=0", "trainer.eval_every"),
        ("trainer.replicas=0", "trainer.replicas"),
        ("model.dropout=1.0", "model.dropout"),
        ("model.init_std=0", "model.init_std"),
        ("model.hidden=[]", "model.hidden"),
        ("dataset.val_size=0", "dataset.val_size"),
        ("target_accuracy=1.5", "target_accuracy"),
        ("device=tpu", "device"),
        ("optimizer.momentum=1.0", "optimizer.momentum"),
        ("norm.noise=-1", "norm.noise"),
        ("trainer.probe_every=-5", "trainer.probe_every"),
    ],
)
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        make_config(override)
    message = str(err.value)
    assert message.startswith(key) and "\n" not in message


def test_batch_size_one_is_fine_without_bn():
    assert make_config("norm=none", "trainer.batch_size=1").trainer.batch_size == 1


def test_noise_needs_a_bn_layer():
    assert make_config("norm=bn_noisy").norm.noise == 1.0
    with pytest.raises(ConfigError, match="norm.noise=1.0 adds noise after a normalization layer"):
        make_config("norm=none", "norm.noise=1.0")


def test_population_stats_need_our_bn():
    with pytest.raises(ConfigError, match="norm.stats=population needs norm.kind=bn"):
        make_config("norm=torch", "norm.stats=population")


@pytest.mark.parametrize(
    "override,allowed",
    [
        ("model.activation=gelu", "sigmoid, relu, tanh"),
        ("norm.placement=middle", "before, after"),
        ("norm.stats=median", "ema, population, batch"),
        ("optimizer.name=lbfgs", "sgd, momentum, adam"),
        ("dataset.name=imagenet", "fashion_mnist, mnist, cifar10, synthetic"),
    ],
)
def test_unknown_choices_list_the_allowed_values(override, allowed):
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        compose_cfg(override)
    text = str(err.value) + str(getattr(err.value, "__cause__", ""))
    assert allowed in text and override.split("=")[0] in text


def test_an_unknown_normalization_lists_the_registered_ones():
    from bnlab.layers.norms import norm_names

    with pytest.raises(ConfigError, match="norm.kind must be one of") as err:
        make_config("norm.kind=nonexistent")
    assert {"none", "bn", "torch"} <= set(norm_names())
    assert all(name in str(err.value) for name in norm_names())


@pytest.mark.parametrize("override", ["norm.eps=abc", "trainer.steps=1.5", "norm.epsilon=1e-3"])
def test_wrong_types_and_unknown_keys_fail_at_composition(override):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_cfg(override)


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["norm.eps=-1"], 2, "bnlab: error: norm.eps must be > 0 (got -1.0)"),
        (["norm.kind=nonexistent"], 2, "bnlab: error: norm.kind must be one of bn, batch_renorm"),
        (["trainer.steps=abc"], 2, "bnlab: error: trainer.steps=abc is not an integer"),
    ],
)
def test_cli_reports_bad_values_without_a_traceback(tmp_path, args, code, needle):
    proc = run_cli(*args, "trainer.progress=false", cwd=tmp_path)
    assert proc.returncode == code
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_trainmode_evaluation_needs_our_bn_or_none():
    with pytest.raises(ConfigError, match="trainer.eval_trainmode=true needs norm.kind=bn"):
        make_config("norm=torch", "trainer.eval_trainmode=true")
    assert make_config("norm=none", "trainer.eval_trainmode=true").trainer.eval_trainmode


def _outside(check):
    """A value the Range ``check`` refuses: just past its lower bound, else its upper one."""
    if check.lo is not None:
        bad = check.lo if check.lo_open else check.lo - 1
    else:
        bad = check.hi if check.hi_open else check.hi + 1
    return [bad] if check.each else bad


def _declared_ranges():
    from dataclasses import fields, is_dataclass

    from bnlab.config.checks import Range

    found = []
    for group in fields(Config):
        if not is_dataclass(group.type) and not isinstance(group.default_factory, type):
            continue
        for f in fields(group.default_factory):
            if isinstance(f.metadata.get("check"), Range):
                found.append((group.name, f.name, f.metadata["check"]))
    return found


@pytest.mark.parametrize(("group", "name", "check"), _declared_ranges())
def test_every_declared_range_refuses_a_value_outside_it_naming_the_key(group, name, check):
    from bnlab.config.schema import validate

    cfg = Config()
    setattr(getattr(cfg, group), name, _outside(check))
    with pytest.raises(ConfigError, match=re.escape(f"{group}.{name} must be ")):
        validate(cfg)
    default = getattr(getattr(Config(), group), name)
    assert default is None or check.holds(default)  # the default is allowed
