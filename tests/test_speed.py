"""The fast paths behind `make bench` compute what the plain paths compute, and the benchmark
script itself runs and prints its machine-readable line (its ratios are not asserted here:
timings on a shared machine are for `make bench` to print, not for tests to judge)."""

import json
import math
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import ROOT, make_config

from bnlab.config.schema import NormConfig
from bnlab.layers.batchnorm import BatchNorm
from bnlab.layers.models import MLP, replica_losses
from bnlab.training.batches import gather
from bnlab.training.fastpaths import CompiledLosses, fused_sgd_step, is_plain_sgd
from bnlab.training.train import run_job


def _sgd_steps(fused: bool, steps: int = 5):
    """Five training steps of a small BN MLP with SGD, the fused step or optimizer.step()."""
    model = MLP(20, 5, hidden=(12, 12), norm=NormConfig(kind="bn"), seeds=(0, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3, foreach=True)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(2, 16, 20, generator=gen), torch.randint(0, 5, (2, 16), generator=gen)
        loss = replica_losses(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        fused_sgd_step(optimizer) if fused else optimizer.step()
        losses.append(loss.detach())
    return model, torch.stack(losses)


def test_plain_sgd_fast_path_equals_optim_sgd_bit_for_bit():
    model = MLP(20, 5, hidden=(12,), seeds=(0,))
    assert is_plain_sgd(torch.optim.SGD(model.parameters(), lr=0.1))
    assert not is_plain_sgd(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    assert not is_plain_sgd(torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4))
    fast_model, fast = _sgd_steps(fused=True)
    ref_model, ref = _sgd_steps(fused=False)
    assert torch.equal(fast, ref)
    for a, b in zip(fast_model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)


def test_gather_equals_advanced_indexing():
    data = torch.randn(50, 3, 4)
    idx = torch.randint(0, 50, (2, 7))
    assert torch.equal(gather(data, idx), data[idx])


@pytest.mark.parametrize("replicas,shape", [(None, (4, 5)), (None, (4, 6, 2, 2)), (2, (3, 4, 6))])
def test_batchnorm_refuses_an_input_of_the_wrong_shape(replicas, shape):
    with pytest.raises(ValueError, match="expects"):
        BatchNorm(3, replicas=replicas)(torch.randn(shape))


def test_compiled_training_matches_eager(tmp_path, smoke_overrides, caplog):
    """trainer.compile=true: the same run up to float rounding (a few seconds of compile),
    compiled once per job, also for a second job in the same process."""
    eager = tmp_path / "eager"
    compiled = tmp_path / "compiled"
    run_job(make_config(*smoke_overrides, "trainer.replicas=2"), eager)
    with torch._dynamo.config.patch(error_on_recompile=True):  # one graph for the whole run
        run_job(
            make_config(*smoke_overrides, "trainer.replicas=2", "trainer.compile=true"), compiled
        )
        # a second job in the same process (a sweep under the basic launcher) starts afresh
        run_job(
            make_config(*smoke_overrides, "trainer.replicas=3", "trainer.compile=true"),
            tmp_path / "second",
        )
    assert "torch.compile failed" not in caplog.text  # no recompile error made it fall back
    for seed in (0, 1):
        a = pd.read_csv(eager / f"seed={seed}" / "metrics.csv")
        b = pd.read_csv(compiled / f"seed={seed}" / "metrics.csv")
        assert a[["step", "split", "metric"]].equals(b[["step", "split", "metric"]])
        pd.testing.assert_series_equal(a.value, b.value, rtol=1e-3, atol=1e-4)


def test_bench_quick_prints_every_comparison_and_the_machine_line():
    proc = subprocess.run(
        [sys.executable, "-m", "bnlab.bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("bnlab bench:") and "torch" in lines[0]
    for shape in ("(256, 1024)", "(128, 64, 32, 32)", "(32, 256, 8, 8)", "(60, 100)"):
        assert any(shape in line and "nn.BatchNorm" in line for line in lines)
    assert "skipped: no CUDA device" in proc.stdout or torch.cuda.is_available()
    for layer, reference in (
        ("group_norm", "nn.GroupNorm"),
        ("layer_norm", "nn.LayerNorm"),
        ("batch_renorm", "nn.BatchNorm"),
    ):
        assert any(f"{layer}: x" in line and reference in line for line in lines), layer
    last = lines[-1]
    assert last.startswith("bench: ")
    values = dict(re.findall(r"(\w+)=(\S+)", last))
    for key in (
        "bn_layer_ratio_large",
        "bn_layer_ratio_small",
        "train_step_ratio",
        "replicas_speedup",
        "fig1_seconds",
        "group_norm_ratio",
        "layer_norm_ratio",
        "batch_renorm_ratio",
        "sync_layer_ratio_paper",
        "sync_layer_ratio_cnn",
    ):
        assert float(values[key]) > 0, (key, last)
    assert "1c. BN synchronized over 2 workers" in proc.stdout
    assert values["fig1_steps"] == "500"
    assert "6. Suite" in proc.stdout and float(values["reference_step_ms"]) > 0
    assert "suite_fast_seconds" in values and "suite_missing" in values
    jobs = [line for line in lines if "s in the trainer" in line]  # from each job's summary
    assert len(jobs) == 2 and all("evaluation" in line for line in jobs)
    assert "7. Bound" in proc.stdout
    for job in ("fig1", "depth"):  # a few steps differenced: a number, not yet a measure
        assert math.isfinite(float(values[f"{job}_matmul_share"])), last
        assert math.isfinite(float(values[f"{job}_matmul_gflops"])), last
    assert float(values["large_matmul_gflops"]) > 0


def test_a_failing_compile_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    def broken_compile(fn, **kwargs):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = MLP(20, 5, hidden=(12,), norm=NormConfig(kind="bn"), seeds=(0,))
    reference = MLP(20, 5, hidden=(12,), norm=NormConfig(kind="bn"), seeds=(0,))
    compiled = CompiledLosses()
    x, y = torch.randn(1, 16, 20), torch.randint(0, 5, (1, 16))
    with caplog.at_level("WARNING"):
        for _ in range(2):
            assert torch.equal(compiled(model, x, y), replica_losses(reference, x, y))
    assert "torch.compile failed" in caplog.text and "C++ compiler" in caplog.text


def test_the_suite_time_of_an_experiment_spans_its_processes(tmp_path):
    """bench's suite section reads an experiment's wall time from its runs' summary.json: at
    least the sum of its jobs' own times, at most the command's wall time (+1 s: the kernel
    gives process start times to the second)."""
    from conftest import run_cli, smoke_args

    from bnlab.bench import experiment_wall_time

    start = time.time()
    proc = run_cli("-m", *smoke_args(tmp_path / "data"), "seed=0,1", "name=suite", cwd=tmp_path)
    elapsed = time.time() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds, runs = experiment_wall_time(tmp_path / "outputs" / "suite")
    assert runs == 2
    jobs = [json.loads(p.read_text()) for p in (tmp_path / "outputs").rglob("summary.json")]
    assert sum(j["wall_time_s"] for j in jobs) <= seconds <= elapsed + 1.0


def test_a_job_begins_with_its_process_unless_the_process_served_a_job_before(monkeypatch):
    """Reused workers (the joblib launcher in one process): the second job's start is its own."""
    from bnlab.job import process

    monkeypatch.setattr(process, "_job_starts", [])
    started = process.process_started_at()
    process.begin_job()
    assert process.job_began_at() == started
    process.begin_job()
    assert process.job_began_at() == process._job_starts[-1] > started


def test_the_suite_times_no_experiment_made_in_several_sittings(tmp_path):
    """Runs reused from another day beside new ones: no one span times them."""
    from bnlab.bench import SITTING_GAP_S, experiment_wall_time

    def run(name, start, end):
        folder = tmp_path / name
        folder.mkdir()
        summary = {"began_at": start, "started_at": start + 1, "finished_at": end}
        (folder / "summary.json").write_text(json.dumps(summary))

    run("a", 1000.0, 1010.0)
    run("b", 1005.0, 1020.0)  # overlapping: one sitting of 20 s
    assert experiment_wall_time(tmp_path) == (20.0, 2)
    run("c", 1020.0 + SITTING_GAP_S + 1, 1100.0)
    assert experiment_wall_time(tmp_path) == (None, 3)
