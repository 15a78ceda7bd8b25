"""The code base's shape, as promised to a newcomer: one home per config fact, an experiment
is its YAML, a fast overlay and one module of the same name, and importing bnlab changes nothing."""

import subprocess
import sys
from dataclasses import fields, is_dataclass
from typing import get_type_hints

import pytest
from conftest import CONF, ROOT, compose_cfg
from omegaconf import OmegaConf

from bnlab import catalog
from bnlab.config.schema import Config, non_result_keys

GROUPS = {"dataset": "dataset", "model": "model", "norm": "norm", "optimizer": "optimizer"}
IDENTIFIERS = {"name", "kind"}  # the key a group's YAML exists to set
EXPERIMENTS = [e.name for e in catalog.experiments(ROOT) if e.trains]


def _schema_defaults(node) -> dict:
    hints = get_type_hints(type(node))
    return {f.name: getattr(node, f.name) for f in fields(node) if not is_dataclass(hints[f.name])}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_yaml_states_only_what_differs_from_the_schema(group):
    for path in sorted((CONF / group).glob("*.yaml")):
        values = OmegaConf.to_container(OmegaConf.load(path)) or {}
        values.pop("defaults", None)
        # a preset that sets another group's keys too (norm=skipinit: model.residual_init)
        packages = values if "@package _global_" in path.read_text() else {group: values}
        for package, keys in packages.items():
            defaults = _schema_defaults(getattr(Config(), package))
            for key, value in keys.items():
                assert key in defaults, f"{path.name}: {key} is not in the schema"
                plain = getattr(defaults[key], "value", defaults[key])
                if key not in IDENTIFIERS:
                    assert value != plain, f"{path.name} restates the default {key}: {value!r}"


def test_the_primary_config_restates_no_default():
    values = OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml"))
    assert set(values) == {"defaults", "hydra"}
    assert not (CONF / "trainer").exists()


def test_non_result_keys_are_listed_once_and_name_no_folder():
    hydra = compose_cfg(hydra=True).hydra
    exclude = list(hydra.job.config.override_dirname.exclude_keys)
    assert exclude == ["experiment", *non_result_keys()]
    assert {"data_dir", "device", "trainer.threads", "trainer.progress", "rerun"} <= set(exclude)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiment_is_one_yaml_one_script_and_a_fast_overlay(name):
    assert (ROOT / "experiments" / f"{name}.py").is_file()
    full = compose_cfg(f"+experiment={name}")
    fast = compose_cfg(f"+experiment={name}_fast")
    assert full.name == name and fast.name == f"{name}_fast"
    budget = ("steps", "epochs", "eval_every", "probe_every", "replicas")
    assert any(full.trainer[k] != fast.trainer[k] for k in budget)
    assert fast.norm == full.norm and fast.dataset == full.dataset


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_goes_to_slurm_with_the_preset(name):
    hydra = compose_cfg("hydra/launcher=slurm", f"+experiment={name}", hydra=True).hydra
    assert hydra.launcher._target_.endswith("SlurmLauncher")
    assert hydra.launcher.max_num_timeout > 0 and hydra.launcher.signal_delay_s > 0


GPU_SCALE = [e.name for e in catalog.experiments(ROOT) if e.gpu_scale]


@pytest.mark.parametrize("name", GPU_SCALE)
def test_a_gpu_scale_experiment_has_a_cpu_budget_between_its_fast_and_full_ones(name):
    full, cpu, fast = (
        compose_cfg(f"+experiment={n}") for n in (name, f"{name}_cpu", f"{name}_fast")
    )
    assert cpu.name == f"{name}_cpu"
    assert cpu.norm == full.norm and cpu.dataset == full.dataset
    size = ("steps", "epochs", "replicas", "batch_size")
    assert any(cpu.trainer[k] != full.trainer[k] for k in size)
    assert any(cpu.trainer[k] != fast.trainer[k] for k in size)


def test_every_experiment_config_has_its_module():
    configs = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    budgets = {c for c in configs if c.endswith(("_fast", "_cpu"))}
    assert configs - budgets - {"smoke"} == set(EXPERIMENTS)
    assert {c.removesuffix("_cpu") for c in budgets if c.endswith("_cpu")} == set(GPU_SCALE)
    assert [e.name for e in catalog.experiments(ROOT) if not e.trains] == ["loss_surface"]


def test_sweeps_name_the_normalization_one_way():
    for path in (CONF / "experiment").glob("*.yaml"):
        assert "norm.kind:" not in path.read_text(), path.name


def test_importing_bnlab_changes_nothing_about_the_process():
    code = """
import matplotlib, torch
from matplotlib import rcsetup
threads = torch.get_num_threads()
import bnlab.results.analysis, bnlab.bench, bnlab.results.callbacks, bnlab.results.figures
import bnlab.job.process, bnlab.training.train
import bnlab.launch, bnlab.suite, bnlab.task
assert matplotlib.rcParams._get("backend") is rcsetup._auto_backend_sentinel, "backend set"
assert torch.get_num_threads() == threads, "threads changed"
assert not torch.are_deterministic_algorithms_enabled(), "determinism switched on"
print("clean")
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.stdout.strip() == "clean", proc.stderr[-2000:]
