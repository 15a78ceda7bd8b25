"""Reliability with real processes: kill and resume, SIGTERM, bad checkpoints, concurrent sweeps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import OFFLINE, ROOT, run_cli

from bnlab.job.checkpoint import load_checkpoint, save_checkpoint
from bnlab.job.folder import folder_name

SMOKE = [
    "+experiment=smoke",
    "dataset.synthetic_train=1500",
    "dataset.val_size=300",
    "dataset.synthetic_test=300",
    "trainer.steps=2400",
    "trainer.eval_every=200",
    "trainer.log_every=50",
    "trainer.checkpoint_every=100",
    "trainer.probe_size=200",
    "trainer.probe_every=100",  # resumes must neither repeat nor skip a probe
    "trainer.progress=false",
]
JOB = "outputs/smoke/" + folder_name(
    ",".join(  # the folder Hydra names from these overrides
        sorted(o for o in SMOKE if not o.startswith(("+experiment", "trainer.progress")))
    )
)


def _start(cwd: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *SMOKE, f"data_dir={cwd / 'data'}", *extra],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"run ended early: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _job(cwd: Path) -> Path:
    job = cwd / JOB
    assert job.is_dir(), sorted(p.name for p in (cwd / "outputs" / "smoke").iterdir())
    return job


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same command, never interrupted."""
    cwd = tmp_path_factory.mktemp("reference")
    proc = _start(cwd)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return _job(cwd)


def _same_results(job: Path, reference: Path) -> None:
    assert (job / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()
    a = json.loads((job / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    assert a["status"] == b["status"] == "completed"
    assert a["final"] == b["final"]


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_resumes_to_identical_metrics(tmp_path, uninterrupted):
    proc = _start(tmp_path)
    _wait_for(tmp_path / JOB / "checkpoint.prev.pt", proc)  # two checkpoints written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    job = _job(tmp_path)
    killed = json.loads((job / "summary.json").read_text())
    assert killed["status"] == "running" and 0 < killed["step"] < 2400
    proc = _start(tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    _same_results(job, uninterrupted)
    assert json.loads((job / "summary.json").read_text())["resumes"] == 1
    metrics = pd.read_csv(job / "metrics.csv")
    assert not metrics.duplicated(["step", "split", "metric"]).any()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2])  # USR2: SLURM's warning
def test_a_stop_signal_writes_a_checkpoint_and_status_then_resumes(tmp_path, uninterrupted, sig):
    proc = _start(tmp_path)
    _wait_for(tmp_path / JOB / "checkpoint.pt", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert f"bnlab: interrupted: {sig.name} at step" in err and "Traceback" not in err
    job = _job(tmp_path)
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert load_checkpoint(job)["step"] == summary["step"]
    rows = pd.read_csv(job / "metrics.csv")
    assert rows.step.max() <= summary["step"]
    proc = _start(tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    _same_results(job, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["current", "both"])
def test_corrupted_checkpoints_fall_back_and_never_crash(tmp_path, uninterrupted, damage):
    proc = _start(tmp_path)
    _wait_for(tmp_path / JOB / "checkpoint.prev.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    job = _job(tmp_path)
    current = job / "checkpoint.pt"
    current.write_bytes(current.read_bytes()[:100])  # truncated
    if damage == "both":
        (job / "checkpoint.prev.pt").write_bytes(b"not a checkpoint")
    proc = _start(tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "checkpoint.pt is unreadable" in out + err
    if damage == "both":
        assert "starting over" in out + err
    else:
        assert "resuming from the checkpoint" in out + err
    _same_results(job, uninterrupted)


def test_load_checkpoint_prefers_current_then_previous(tmp_path):
    def state(step):
        return {
            "step": step,
            "model": {},
            "optimizer": {},
            "replicas": [],
            "rng_cpu": torch.get_rng_state(),
            "window": torch.zeros(1),
            "window_steps": 0,
            "elapsed": 0.0,
            "resumes": 0,
            "config": {},
        }

    save_checkpoint(tmp_path, state(1))
    save_checkpoint(tmp_path, state(2))
    assert load_checkpoint(tmp_path)["step"] == 2
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 10)
    assert load_checkpoint(tmp_path)["step"] == 1
    (tmp_path / "checkpoint.prev.pt").unlink()
    assert load_checkpoint(tmp_path) is None


def test_a_checkpoint_missing_what_resume_reads_falls_back(tmp_path):
    base = {
        "step": 1,
        "model": {},
        "optimizer": {},
        "replicas": [],
        "window": torch.zeros(1),
        "rng_cpu": torch.get_rng_state(),
        "window_steps": 0,
        "elapsed": 0.0,
        "resumes": 0,
        "config": {},
    }
    save_checkpoint(tmp_path, base)
    save_checkpoint(tmp_path, {k: v for k, v in base.items() if k != "window"} | {"step": 2})
    assert load_checkpoint(tmp_path)["step"] == 1


def test_checkpoints_are_loaded_without_running_pickled_code(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"format": 1, "step": 1, "payload": Sneaky()}, tmp_path / "checkpoint.pt")
    assert load_checkpoint(tmp_path) is None
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_two_identical_sweeps_at_once_share_the_work_and_never_collide(tmp_path):
    args = [
        "-m",
        *SMOKE[:-4],
        "trainer.steps=400",
        "trainer.eval_every=100",
        "trainer.log_every=50",
        "trainer.progress=false",
        "norm=none,bn",
        "seed=0,1",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), *args, f"data_dir={tmp_path / 'data'}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    jobs = [p for p in (tmp_path / "outputs" / "smoke").iterdir() if p.is_dir()]
    assert len(jobs) == 4
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed"
        metrics = pd.read_csv(job / "metrics.csv")
        assert not metrics.duplicated(["step", "split", "metric"]).any()
        assert sorted(metrics[metrics.split == "val"].step.unique()) == [0, 100, 200, 300, 400]


def test_bad_config_or_missing_data_leaves_no_folder(tmp_path):
    (tmp_path / "outputs" / "run" / "other").mkdir(parents=True)  # another run's folder stays
    for args in (["norm.eps=-1"], ["dataset=mnist", f"data_dir={tmp_path / 'nothing'}"]):
        proc = run_cli(*args, "trainer.progress=false", cwd=tmp_path, env=OFFLINE)
        assert proc.returncode == 2 and proc.stderr.startswith("bnlab: error:"), proc.stderr
        assert "Traceback" not in proc.stderr
    outputs = tmp_path / "outputs"
    assert [p.relative_to(outputs) for p in outputs.rglob("*")] == [Path("run"), Path("run/other")]
    assert not (tmp_path / "nothing").exists()  # nor data folders from the failed download


def test_a_refused_job_keeps_a_folder_with_results(tmp_path, smoke_overrides):
    """A finished run whose config changed since (an edited default, say) is refused, and its
    folder and results stay as they were."""
    from omegaconf import OmegaConf

    assert run_cli(*smoke_overrides, cwd=tmp_path).returncode == 0
    (job,) = (tmp_path / "outputs" / "smoke").iterdir()
    stored = OmegaConf.load(job / "config.yaml")
    stored.optimizer.lr = 0.125
    OmegaConf.save(stored, job / "config.yaml")
    before = sorted(p.relative_to(job) for p in job.rglob("*"))
    proc = run_cli(*smoke_overrides, cwd=tmp_path)
    assert proc.returncode == 2 and "optimizer.lr: 0.125" in proc.stderr, proc.stderr
    assert sorted(p.relative_to(job) for p in job.rglob("*")) == before


def test_a_diverging_job_does_not_stop_the_sweep(tmp_path):
    proc = run_cli(
        "-m",
        "+experiment=smoke",
        "norm=none",
        "optimizer.lr=1e30,0.5",
        "trainer.steps=100",
        "trainer.eval_every=50",
        "trainer.log_every=25",
        "dataset.synthetic_train=1200",
        "dataset.val_size=200",
        f"data_dir={tmp_path / 'data'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sweep = tmp_path / "outputs" / "smoke"
    status = {
        p.name: json.loads((p / "summary.json").read_text())["status"]
        for p in sweep.iterdir()
        if p.is_dir()
    }
    assert sorted(status.values()) == ["completed", "diverged"]
    assert "optimizer.lr=1e+30" in [k for k, v in status.items() if v == "diverged"][0]
    table = pd.read_csv(sweep / "comparison.csv")
    assert table["diverged"].sum() == 1


def test_a_key_added_to_the_schema_later_counts_at_its_default():
    """Runs made before a key existed (say trainer.probe_every) are still found as finished."""
    from bnlab.config.schema import Config, config_dict
    from bnlab.job.folder import config_differences

    wanted = config_dict(Config())
    old = config_dict(Config())
    del old["trainer"]["probe_every"]
    assert config_differences(old, wanted) == []
    wanted["trainer"]["probe_every"] = 100
    assert config_differences(old, wanted) == ["trainer.probe_every: 0 -> 100"]
