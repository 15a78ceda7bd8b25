"""Section 2, step: one SGD training step of the paper's Figure 1 MLP (its shapes from
conf/experiment/paper_fig1.yaml), one seed, with this project's BN, with ``nn.BatchNorm1d`` and
without normalization, each pair in the same execution mode. Measured: the median step time,
steps per second, and BN's step time over nn.BatchNorm1d's (eager; compiled too where
torch.compile works)."""

from __future__ import annotations

from bnlab.bench.context import Bench
from bnlab.bench.steps import step_contender
from bnlab.bench.timing import interleaved


def bench_train_step(bench: Bench) -> dict[str, float]:
    """BN's step time over nn.BatchNorm1d's, per execution mode (eager, compiled)."""
    quick, out = bench.quick, bench.out
    out(f"\n2. Training step, paper MLP ({bench.fig1.describe()}, SGD), one seed")
    modes = [False] + ([True] if bench.compiled else [])
    ratios = {}
    for mode in modes:
        label = "compiled" if mode else "eager"
        contenders = {
            f"{norm} ({label})": step_contender(bench.fig1, norm, 1, mode, bench.data)
            for norm in ("torch", "bn", "none")
        }
        timings = interleaved(contenders, 5 if quick else 200, 3 if quick else 9)
        native = timings[f"torch ({label})"].median
        for name, timing in timings.items():
            out(
                f"   {name:18s} {timing.row()}  {1 / timing.median:8.0f} steps/s   "
                f"x{timing.median / native:.2f} of nn.BatchNorm1d"
            )
        ratios[label] = timings[f"bn ({label})"].median / native
    return ratios


def run(bench: Bench) -> dict[str, object]:
    """``train_step_ratio`` (and ``_compiled``): BN's step time over nn.BatchNorm1d's."""
    ratios = bench_train_step(bench)
    results: dict[str, object] = {"train_step_ratio": ratios["eager"]}
    if bench.compiled:
        results["train_step_ratio_compiled"] = ratios["compiled"]
    return results
