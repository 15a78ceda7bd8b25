"""Shared helpers: compose the real conf/ with Hydra's compose API, run the real entry point."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Inductor's compiled-kernel cache does not key on ATEN_CPU_CAPABILITY: kernels built for
# AVX-512 and loaded under ATEN_CPU_CAPABILITY=avx2 computed values 1e38 off (torch 2.14.1;
# a job's fast-path check catches that and trains eagerly). For the suite under a forced
# capability, a cache of its own, set before torch starts its compile workers.
if os.environ.get("ATEN_CPU_CAPABILITY") and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"torchinductor_bnlab_{os.environ['ATEN_CPU_CAPABILITY']}"
    )

import pytest
from hydra import compose, initialize_config_dir

from bnlab.config.hydra_setup import register_configs
from bnlab.config.schema import Config, to_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_cfg(*overrides: str, hydra: bool = False):
    """The DictConfig that `python run.py <overrides>` would build (with ``hydra``: its node)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def make_config(*overrides: str) -> Config:
    """A validated, typed Config from overrides; progress bars off for tests."""
    return to_config(compose_cfg("trainer.progress=false", *overrides))


# Proxy settings under which any download fails at once, with or without internet.
OFFLINE = {
    var: "http://127.0.0.1:9" for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
}


def run_cli(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python run.py <args>` in ``cwd`` (results land in cwd/outputs), with ``env`` added
    to this process's environment (less its HYDRA_FULL_ERROR and no_proxy)."""
    dropped = ("HYDRA_FULL_ERROR", "no_proxy", "NO_PROXY")
    mine = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env=dict(mine, PYTHONUNBUFFERED="1", **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def smoke_args(data_dir: Path) -> list[str]:
    """Overrides for a tiny synthetic run reading (generating) its data in ``data_dir``."""
    return [
        "+experiment=smoke",
        f"data_dir={data_dir}",
        "dataset.synthetic_train=1500",
        "dataset.val_size=500",
        "dataset.synthetic_test=500",
        "trainer.steps=120",
        "trainer.eval_every=40",
        "trainer.log_every=20",
        "trainer.probe_size=200",
    ]


@pytest.fixture
def smoke_overrides(tmp_path):
    """Overrides for a tiny synthetic run whose data folder is private to the test."""
    return smoke_args(tmp_path / "data")


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """A real 2 x 2 sweep (norm=none/bn x seed 0/1) laid out as Hydra's multirun would."""
    from bnlab.training.train import run_job

    root = tmp_path_factory.mktemp("sweep") / "smoke"
    data = root.parent / "data"
    for kind in ("none", "bn"):
        for seed in (0, 1):
            cfg = make_config(*smoke_args(data), f"norm={kind}", f"seed={seed}")
            run_job(cfg, root / f"norm={kind},seed={seed}")
    return root
