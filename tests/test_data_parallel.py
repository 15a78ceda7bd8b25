"""Data-parallel training (trainer.data_parallel; bnlab.training.parallel) on 2 gloo processes
started and stopped by the job itself: with synchronized BN it trains as one process with the
whole batch; with per-worker BN, as ghost batch norm over the per-worker batch; a worker killed
mid-run is one line, worker 0 checkpoints, and the same command resumes to the same numbers.

Equal "to float rounding": the workers' gradients are summed in another order than one
process's, about 1e-7 relative a step; over these 300-1000 steps of a stable run the losses
stay within 1e-6 relative of each other (measured), asserted with a 10x margin."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, make_config

from bnlab.errors import ConfigError
from bnlab.results.analysis import find_runs
from bnlab.training.train import run_job

DRIFT = dict(rtol=1e-5, atol=1e-7)
SMOKE = ("+experiment=smoke", "trainer.progress=false")


def _losses(folder) -> pd.Series:
    metrics = pd.read_csv(folder / "metrics.csv")
    return metrics[(metrics.split == "train") & (metrics.metric == "loss")].set_index("step").value


@pytest.mark.parametrize(
    ("parallel", "single"),
    [
        (["norm.sync=true"], ["norm.sync=true"]),  # synchronized BN: BN over the whole batch
        ([], ["norm.ghost_batch=30"]),  # per-worker BN: BN over each worker's 30
        (["norm=none"], ["norm=none"]),
    ],
)
def test_two_workers_train_as_one_process_would(tmp_path, parallel, single):
    run_job(make_config(*SMOKE, "trainer.data_parallel=2", *parallel), tmp_path / "two")
    run_job(make_config(*SMOKE, *single), tmp_path / "one")
    two, one = _losses(tmp_path / "two"), _losses(tmp_path / "one")
    assert list(two.index) == [50, 100, 150, 200, 250, 300]
    pd.testing.assert_series_equal(two, one, **DRIFT)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 300
    assert not list((tmp_path / "two").glob(".rank*")) + list((tmp_path / "two").glob(".worker*"))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["trainer.data_parallel=7"], "must divide trainer.batch_size"),  # 60 / 7
        (["trainer.data_parallel=60"], "slices of at least 2"),  # BN over 1 example
        (["norm=layer", "norm.sync=true"], "norm.sync synchronizes bnlab's BN"),
        (["trainer.data_parallel=2", "trainer.compile=true"], "trainer.compile runs in one"),
        (["trainer.data_parallel=2", "trainer.probe_every=10"], "trainer.probe_every runs in"),
    ],
)
def test_a_data_parallel_setting_that_cannot_be_is_one_line(overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_config(*overrides)


def _pid_of(lock) -> int:
    return int(lock.read_text().split()[1])


def test_a_killed_worker_is_one_line_and_the_same_command_resumes(tmp_path):
    """Worker 1 is killed once worker 0 has checkpointed: the job stops in one line naming
    it, worker 0 writes its checkpoint and marks the run interrupted; run again, the job
    resumes and ends with the losses of one process trained without a stop."""
    out = tmp_path / "job"
    command = [
        sys.executable,
        str(ROOT / "run.py"),
        *SMOKE,
        "trainer.data_parallel=2",
        "norm.sync=true",
        "trainer.steps=1000",
        "trainer.eval_every=500",
        "trainer.checkpoint_every=100",
        f"hydra.run.dir={out}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    job = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lock, deadline = out / ".rank1" / ".lock", time.time() + 120
    while not ((out / "checkpoint.pt").exists() and lock.exists()) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(_pid_of(lock), signal.SIGKILL)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("bnlab:")]
    assert len(lines) == 1 and "worker 1 of 2 stopped (signal SIGKILL)" in lines[0], stderr
    assert "checkpoint written" in lines[0] and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 100 <= summary["step"] < 1000
    assert find_runs(out) == [out]  # a killed worker's scratch folder is no run

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    one = tmp_path / "one"
    run_job(
        make_config(*SMOKE, "norm.sync=true", "trainer.steps=1000", "trainer.eval_every=500"), one
    )
    pd.testing.assert_series_equal(_losses(out), _losses(one), **DRIFT)
