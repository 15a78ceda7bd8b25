"""The same code path on CUDA. Skipped where there is no CUDA device (CI has none); on a GPU
machine run `make gpu-check`, or scripts/gpu_check.sh on a bare one. The compiled step is
checked against the eager step on CUDA itself, never against compiled CPU (both could be
wrong the same way, as under torch 2.11)."""

import json
import signal

import pandas as pd
import pytest
import torch
from conftest import make_config
from test_compiled import (
    DATA,
    _model_and_batch,
    compiled_and_eager_training_agree,
)
from test_reliability import JOB, _job, _same_results, _start, _wait_for
from torch import nn

from bnlab.layers.batchnorm import BatchNorm
from bnlab.training.fastcheck import fast_path_error
from bnlab.training.fastpaths import CompiledLosses
from bnlab.training.train import run_job

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("shape", [(60, 100), (16, 8, 6, 6)])
def test_batchnorm_on_cuda_matches_native_cuda_and_cpu(shape):
    gen = torch.Generator().manual_seed(0)
    x_cpu, dy_cpu = torch.randn(shape, generator=gen) * 3 + 1, torch.randn(shape, generator=gen)
    results = {}
    for name, device in (("ours", "cuda"), ("native", "cuda"), ("cpu", "cpu")):
        layer = (
            (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1])
            if name == "native"
            else BatchNorm(shape[1])
        )
        layer = layer.to(device)
        x = x_cpu.to(device).requires_grad_()
        y = layer(x)
        y.backward(dy_cpu.to(device))
        results[name] = [
            t.detach().cpu()
            for t in (y, x.grad, layer.weight.grad, layer.bias.grad, layer.running_var)
        ]
    for ours, native, cpu in zip(results["ours"], results["native"], results["cpu"]):
        torch.testing.assert_close(ours, native, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours, cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("compile", [False, True])
def test_training_on_cuda_matches_cpu(tmp_path, smoke_overrides, compile):
    """The same job on CUDA and on CPU: every seed recorded, and the same curves up to float
    rounding (same initial weights, same batches)."""
    args = [*smoke_overrides, "trainer.replicas=2", f"trainer.compile={compile}"]
    gpu = run_job(make_config(*args, "device=cuda"), tmp_path / "cuda")
    run_job(make_config(*args, "device=cpu"), tmp_path / "cpu")
    assert [s["status"] for s in gpu] == ["completed", "completed"]
    assert all(s["device"].startswith("cuda") for s in gpu)
    for seed in (0, 1):
        on_gpu = pd.read_csv(tmp_path / "cuda" / f"seed={seed}" / "metrics.csv")
        on_cpu = pd.read_csv(tmp_path / "cpu" / f"seed={seed}" / "metrics.csv")
        assert on_gpu[["step", "split", "metric"]].equals(on_cpu[["step", "split", "metric"]])
        pd.testing.assert_series_equal(on_gpu.value, on_cpu.value, rtol=1e-3, atol=1e-3)
    summary = json.loads((tmp_path / "cuda" / "seed=0" / "summary.json").read_text())
    assert summary["steps_per_second"] > 0


def test_replicas_on_cuda_equal_separate_runs(tmp_path, smoke_overrides):
    args = [*smoke_overrides, "device=cuda"]
    run_job(make_config(*args, "trainer.replicas=2", "seed=3"), tmp_path / "batched")
    for seed in (3, 4):
        run_job(make_config(*args, f"seed={seed}"), tmp_path / f"s{seed}")
        together = pd.read_csv(tmp_path / "batched" / f"seed={seed}" / "metrics.csv")
        alone = pd.read_csv(tmp_path / f"s{seed}" / "metrics.csv")
        pd.testing.assert_series_equal(together.value, alone.value, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("compile", [False, True])
def test_a_rate_grid_on_cuda_equals_separate_runs(tmp_path, smoke_overrides, compile):
    """optimizer.lr_grid's per-rate SGD step on CUDA (1.9e-6 apart at most on an H200)."""
    args = [*smoke_overrides, "device=cuda", "trainer.replicas=2", f"trainer.compile={compile}"]
    run_job(make_config(*args, "optimizer.lr_grid=[0.05,0.4,2.0]"), tmp_path / "grid")
    for lr in (0.05, 0.4, 2.0):
        run_job(make_config(*args, f"optimizer.lr={lr}"), tmp_path / f"lr{lr}")
        for seed in (0, 1):
            together = pd.read_csv(
                tmp_path / "grid" / f"lr={lr!r}" / f"seed={seed}" / "metrics.csv"
            )
            alone = pd.read_csv(tmp_path / f"lr{lr}" / f"seed={seed}" / "metrics.csv")
            pd.testing.assert_series_equal(together.value, alone.value, rtol=1e-4, atol=1e-5)


def test_sigterm_on_cuda_then_rerun_resumes_to_identical_metrics(tmp_path):
    """Kill/resume on CUDA, against an uninterrupted CUDA run of the same command."""
    reference = tmp_path / "reference"
    reference.mkdir()
    proc = _start(reference, "device=cuda")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    proc = _start(interrupted, "device=cuda")
    _wait_for(interrupted / JOB / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    proc = _start(interrupted, "device=cuda")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    _same_results(_job(interrupted), _job(reference))


@pytest.mark.parametrize("layout", ["mlp", "cnn"])
@pytest.mark.parametrize("norm", ["bn", "batch_renorm", "group", "torch"])  # the four Functions
def test_compiled_step_equals_eager_on_cuda(norm, layout, tmp_path):
    model, x, y = _model_and_batch(norm, layout, tmp_path)
    _, x2, y2 = _model_and_batch(norm, layout, tmp_path, batch_seed=1)
    batches = [(x.cuda(), y.cuda()), (x2.cuda(), y2.cuda())]
    compiled = CompiledLosses()
    assert fast_path_error(model.cuda(), batches, compiled) is None
    assert compiled.failed is None


@pytest.mark.skipif(not (DATA / "FashionMNIST").is_dir(), reason="Fashion-MNIST not in data/")
@pytest.mark.parametrize("norm", ["bn", "batch_renorm"])
def test_the_papers_network_trains_the_same_compiled_and_eager_on_cuda(tmp_path, norm):
    compiled_and_eager_training_agree(tmp_path, norm, "cuda", 2000)
