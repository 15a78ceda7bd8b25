"""Section 5, gpu (on a CUDA device only): the paper's BN MLP on random data resident on the
GPU, one seed eager and compiled, then K seeds as one compiled model. Measured: steps and
model-steps per second over a fixed number of steps."""

from __future__ import annotations

import time

import torch

from bnlab.bench.context import Bench
from bnlab.bench.steps import step_contender

K = 100  # seeds as one model
EXAMPLES = 60_000  # rows of the random training data on the GPU (MNIST's training set)


def run(bench: Bench, k: int = K) -> dict[str, object]:
    """``gpu_steps_per_s_k1`` (one seed, compiled) and ``gpu_model_steps_per_s`` (K seeds)."""
    out = bench.out
    out(f"\n5. GPU: the BN MLP, one seed (eager, compiled) and K={k} replicas (compiled)")
    if not torch.cuda.is_available():
        out("   skipped: no CUDA device")
        return {}
    device, net = torch.device("cuda"), bench.fig1
    x = torch.rand(EXAMPLES, net.sizes[0], device=device)
    y = torch.randint(0, net.sizes[-1], (EXAMPLES,), device=device)
    steps = 50 if bench.quick else 2000
    rates = {}
    for label, replicas, compiled in (
        ("K=1 eager", 1, False),
        ("K=1 compiled", 1, True),
        (f"K={k} compiled", k, True),
    ):
        call = step_contender(net, "bn", replicas, compiled, (x, y))
        for _ in range(20):
            call()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            call()
        torch.cuda.synchronize()
        per_second = steps / (time.perf_counter() - start)
        rates[label] = per_second * replicas
        out(
            f"   {label:14s} {per_second:9,.0f} steps/s  {per_second * replicas:11,.0f} "
            f"model-steps/s"
        )
    out(f"   card: {torch.cuda.get_device_name()}")
    return {
        "gpu_steps_per_s_k1": rates["K=1 compiled"],
        "gpu_model_steps_per_s": rates[f"K={k} compiled"],
    }
