"""Section 3, replicas: K seeds of the paper's BN MLP trained as one batched model against
one seed at a time. Measured: model-steps per second of each, eager and (where torch.compile
works) compiled, and the best batched rate over the best serial rate."""

from __future__ import annotations

from bnlab.bench.context import Bench
from bnlab.bench.steps import step_contender
from bnlab.bench.timing import interleaved

K = 10  # seeds as one model


def run(bench: Bench, k: int = K) -> dict[str, object]:
    """``replicas_speedup``: the best batched rate over the best serial rate (each in its
    fastest execution mode)."""
    quick, out, net, data = bench.quick, bench.out, bench.fig1, bench.data
    out(f"\n3. Seeds as one batched model (BN MLP): K={k} vs one seed at a time")
    serial, batched = {}, {}
    for mode in [False] + ([True] if bench.compiled else []):
        label = "compiled" if mode else "eager"
        contenders = {
            f"K=1 ({label})": step_contender(net, "bn", 1, mode, data),
            f"K={k} ({label})": step_contender(net, "bn", k, mode, data),
        }
        timings = interleaved(contenders, 5 if quick else 100, 3 if quick else 7)
        serial[label] = 1 / timings[f"K=1 ({label})"].median
        batched[label] = k / timings[f"K={k} ({label})"].median
        out(
            f"   {label:9s} serial {serial[label]:8.0f} model-steps/s   batched "
            f"{batched[label]:8.0f} model-steps/s   x{batched[label] / serial[label]:.2f}"
        )
    speedup = max(batched.values()) / max(serial.values())
    out(f"   best batched / best serial: x{speedup:.2f}")
    return {"replicas_speedup": speedup}
