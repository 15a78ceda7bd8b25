"""Section 7, bound: what bounds the suite's two longest jobs (a Figure 1 job, a 64-layer depth
job; their shapes from their experiments' configs). Measured, on one thread: a training step of
each (two runs of the job through :func:`bnlab.training.train.run_job`, differenced), the matrix
products of that step timed alone (their share of the step and GFLOP/s), and a large product's
GFLOP/s on this core."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from bnlab.bench.context import Bench
from bnlab.bench.shapes import Network, fig1_overrides, network
from bnlab.bench.timing import interleaved, one_thread
from bnlab.launch import compose
from bnlab.training.train import run_job

DEPTH_JOB = ["+experiment=depth", "model=mlp_relu", "norm=bn", "model.depth=64"]


def step_time_ms(overrides: list[str], steps: tuple[int, int]) -> float:
    """Wall ms per training step of the job ``overrides`` (run.py's, on one thread): two runs
    of ``steps`` = (a, b) steps, differenced (set-up, compiling and the final evaluation cancel)."""

    def seconds(n: int) -> float:
        cfg = compose([*overrides, f"trainer.steps={n}", f"trainer.eval_every={n}"])
        with tempfile.TemporaryDirectory(prefix="bnlab-bench-") as tmp:
            start = time.perf_counter()
            run_job(cfg, Path(tmp), 1)
            return time.perf_counter() - start

    with one_thread():
        seconds(steps[0])  # warm: data, compile cache
        return 1000 * (seconds(steps[1]) - seconds(steps[0])) / (steps[1] - steps[0])


def step_products(sizes: list[int], replicas: int, batch: int, rounds: int) -> tuple[float, float]:
    """(ms, GFLOP/s) of the matrix products of one training step of an MLP with layer widths
    ``sizes`` (input first) as ``replicas`` batched models, timed alone on one thread: per
    layer the forward product (K, N, in) x (K, in, out), the weight gradient x^T g and, but
    for the first layer, the input gradient g W^T, in the layouts autograd uses."""
    products, flops = [], 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        x, g = torch.randn(replicas, batch, fan_in), torch.randn(replicas, batch, fan_out)
        w = torch.randn(replicas, fan_in, fan_out)
        products += [lambda x=x, w=w: torch.bmm(x, w), lambda x=x, g=g: torch.bmm(x.mT, g)]
        if i > 0:
            products.append(lambda g=g, w=w: torch.bmm(g, w.mT))
        flops += 2 * replicas * batch * fan_in * fan_out * (3 if i > 0 else 2)

    def step() -> None:
        for product in products:
            product()

    with one_thread():
        seconds = interleaved({"products": step}, 10, rounds)["products"].median
    return 1000 * seconds, flops / seconds / 1e9


def large_matmul_gflops(quick: bool, n: int = 2000) -> float:
    """GFLOP/s of an n x n by n x n float32 product on one thread (median of rounds)."""
    with one_thread():
        a, b = torch.randn(n, n), torch.randn(n, n)
        timing = interleaved({"mm": lambda: a @ b}, 2, 2 if quick else 5)
    return 2 * n**3 / timing["mm"].median / 1e9


def bound_jobs(quick: bool) -> dict[str, tuple[str, list[str], tuple[int, int], Network]]:
    """key: (label, overrides, steps differenced, network) of the two longest jobs."""
    fig1 = [*fig1_overrides(), "norm=bn", "trainer.probe_every=0"]
    fig1_net, depth_net = network(compose(fig1)), network(compose(DEPTH_JOB))
    return {
        "fig1": (
            f"paper_fig1, BN, {fig1_net.models} seeds as one compiled model",
            fig1,
            (20, 60) if quick else (200, 2200),
            fig1_net,
        ),
        "depth": (
            f"depth, {len(depth_net.hidden)} layers, ReLU + BN, {depth_net.models} runs as "
            "one model",
            DEPTH_JOB,
            (2, 6) if quick else (10, 110),
            depth_net,
        ),
    }


def run(bench: Bench) -> dict[str, object]:
    """``<job>_matmul_share`` and ``<job>_matmul_gflops`` of each job, and
    ``large_matmul_gflops``."""
    quick, out = bench.quick, bench.out
    out(
        "\n7. Bound: a training step of the longest jobs, one thread: the whole step (two runs "
        "differenced) and its matrix products timed alone"
    )
    if not Path("conf/experiment").is_dir():
        out("   skipped: run from bnlab's folder (where conf/ is)")
        return {}
    results: dict[str, object] = {}
    for key, (label, overrides, steps, net) in bound_jobs(quick).items():
        step_ms = step_time_ms([*overrides, "device=cpu", "trainer.progress=false"], steps)
        products_ms, gflops = step_products(
            list(net.sizes), net.models, net.batch, 2 if quick else 7
        )
        share = products_ms / step_ms
        out(
            f"   {label}: {step_ms:.2f} ms per step; its matrix products alone "
            f"{products_ms:.2f} ms ({100 * share:.0f}%) at {gflops:.0f} GFLOP/s"
        )
        results[f"{key}_matmul_share"] = share
        results[f"{key}_matmul_gflops"] = gflops
    large = large_matmul_gflops(quick)
    out(f"   a 2000 x 2000 product on this core: {large:.0f} GFLOP/s")
    results["large_matmul_gflops"] = large
    return results
