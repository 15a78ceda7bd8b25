"""The SLURM path against a real controller: a one-node cluster on this machine
(scripts/slurm_local.sh: munged, slurmctld, slurmd, stopped by pid). A sweep through the
hydra/launcher=slurm preset gives the same metrics as the local launcher, and a job sent
USR2 (SLURM's time-limit and pre-emption warning) checkpoints, is requeued by submitit and
ends with the metrics of an uninterrupted run. Skipped, with the reason, where no cluster
can be started (not root, no apt-get, no packages)."""

import json
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, run_cli

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm():
    """A running local cluster: ``{"SLURM_CONF": ...}`` for the processes that use it."""
    conf = os.environ.get("SLURM_LOCAL_DIR", "/tmp/bnlab-slurm") + "/slurm.conf"
    env = {"SLURM_CONF": conf}
    running = (
        shutil.which("sinfo")
        and subprocess.run(
            ["sinfo", "-h"], env={**os.environ, **env}, capture_output=True
        ).returncode
        == 0
    )
    ours = not running
    if ours:
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
            pytest.skip(f"no local SLURM cluster could be started: {reason}")
    yield env
    if ours:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True)


COMMON = [
    "+experiment=smoke",
    "dataset.synthetic_train=1500",
    "dataset.val_size=500",
    "dataset.synthetic_test=500",
    "trainer.probe_size=200",
    "trainer.threads=1",
]


def _metrics(job_dir):
    return sorted(p.relative_to(job_dir) for p in job_dir.rglob("metrics.csv"))


def test_a_sweep_through_the_slurm_preset_equals_the_local_launcher(tmp_path, slurm):
    grid = ["norm=none,bn", "seed=0,1", "trainer.steps=120", "trainer.eval_every=40"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    local = run_cli("-m", *COMMON, *grid, f"data_dir={tmp_path / 'data'}", cwd=tmp_path / "a")
    assert local.returncode == 0, local.stderr[-2000:]
    proc = run_cli(
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=10",
        *COMMON,
        *grid,
        f"data_dir={tmp_path / 'data'}",
        cwd=tmp_path / "b",
        env=slurm,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = tmp_path / "a" / "outputs" / "smoke", tmp_path / "b" / "outputs" / "smoke"
    runs = _metrics(a)
    assert len(runs) == 4 and _metrics(b) == runs
    for run in runs:
        assert (a / run).read_text() == (b / run).read_text(), run
        summary = json.loads((b / run).with_name("summary.json").read_text())
        assert summary["status"] == "completed" and summary["threads"] == 1
    assert list((b / ".submitit").iterdir())  # the jobs went through SLURM


def _wait_for_step(metrics, step, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early: {proc.stderr.read()[-2000:]}")
        if metrics.exists():
            steps = [int(line.split(",")[0]) for line in metrics.read_text().splitlines()[1:]]
            if steps and max(steps) >= step:
                return
        time.sleep(0.2)
    raise AssertionError(f"{metrics} never reached step {step}")


def _wait_until_requeued(job_id, env, timeout=120):
    """Wait until the USR2'd job is back in the queue. SLURM starts it again once its old
    credential has expired (cred_expire=10 s on the local cluster; 120 s by default): forcing
    an earlier start lets slurmd refuse it ("Job credential revoked") and the job is lost."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True, text=True
        ).stdout.strip()
        if state.startswith("PENDING"):
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} was not requeued")


def test_usr2_checkpoints_and_the_requeued_job_ends_as_an_uninterrupted_run(tmp_path, slurm):
    job = [
        "model.hidden=[256,256,256]",
        "trainer.steps=3000",
        "trainer.eval_every=100",
        "trainer.log_every=50",
        "trainer.checkpoint_every=0",
        f"data_dir={tmp_path / 'data'}",
    ]
    (tmp_path / "plain").mkdir()
    plain = run_cli("-m", *COMMON, *job, cwd=tmp_path / "plain", timeout=600)
    assert plain.returncode == 0, plain.stderr[-2000:]
    (tmp_path / "slurm").mkdir()
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=slurm"]
    cmd += ["hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10", *COMMON, *job]
    env = {**os.environ, **slurm, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path / "slurm",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sweep = tmp_path / "slurm" / "outputs" / "smoke"
    folder = next(iter(_metrics(tmp_path / "plain" / "outputs" / "smoke"))).parent
    _wait_for_step(sweep / folder / "metrics.csv", 300, proc)
    job_ids = subprocess.run(
        ["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True
    ).stdout.split()
    assert len(job_ids) == 1
    subprocess.run(["scancel", "--signal=USR2", job_ids[0]], env=env, check=True)
    _wait_until_requeued(job_ids[0], env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads((sweep / folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumes"] == 1
    plain_dir = tmp_path / "plain" / "outputs" / "smoke" / folder
    assert (sweep / folder / "metrics.csv").read_text() == (plain_dir / "metrics.csv").read_text()
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*.err"))
    assert "interrupted: SIGUSR2" in logs  # our handler checkpointed before submitit requeued


def test_a_data_parallel_job_runs_its_workers_inside_one_slurm_job(tmp_path, slurm):
    """trainer.data_parallel=2 through the preset: one SLURM job (2 CPUs) whose task starts
    the 2 workers; with synchronized BN it ends as one process with the whole batch does."""
    args = [*COMMON, "trainer.steps=120", "trainer.eval_every=40", "norm.sync=true"]
    proc = run_cli(
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=2",
        "hydra.launcher.timeout_min=10",
        *args,
        "trainer.data_parallel=2",
        f"data_dir={tmp_path / 'data'}",
        cwd=tmp_path,
        env=slurm,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = [p.parent for p in (tmp_path / "outputs" / "smoke").rglob("metrics.csv")]
    assert json.loads((job / "summary.json").read_text())["status"] == "completed"
    assert list((tmp_path / "outputs" / "smoke" / ".submitit").iterdir())
    one = run_cli(*args, f"data_dir={tmp_path / 'data'}", "name=one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    (alone,) = [p.parent for p in (tmp_path / "outputs" / "one").rglob("metrics.csv")]
    a, b = (pd.read_csv(d / "metrics.csv") for d in (job, alone))
    train = (a.split == "train") & (a.metric == "loss")
    pd.testing.assert_series_equal(a[train].value, b[train].value, rtol=1e-5, atol=1e-7)
