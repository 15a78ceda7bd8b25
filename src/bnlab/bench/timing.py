"""How bench times: contenders interleaved round by round, the median per call with the
min-max over rounds; torch on one thread where the suite's jobs run so."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass
class Timing:
    """Seconds per call over the rounds of one contender."""

    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def row(self, unit: str = "us") -> str:
        scale = {"us": 1e6, "ms": 1e3}[unit]
        lo, hi = min(self.seconds) * scale, max(self.seconds) * scale
        return f"{self.median * scale:10.1f} {unit} ({lo:.1f}-{hi:.1f})"


def interleaved(
    contenders: dict[str, Callable[[], object]], calls: int, rounds: int, warmup: int = 3
) -> dict[str, Timing]:
    """Time each contender ``calls`` times per round, contenders alternating within a round."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return {name: Timing(name, secs) for name, secs in times.items()}


def forward_backward(layer, x: torch.Tensor, dy: torch.Tensor) -> Callable[[], None]:
    """One call: ``layer``'s forward on ``x`` and its backward from ``dy``."""

    def call():
        layer(x).backward(dy)
        x.grad = None

    return call


@contextmanager
def one_thread():
    """torch on one thread within the block (as the suite's jobs run), as before after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compile_works() -> Optional[str]:
    """None when torch.compile can build a CPU kernel here, else the reason it cannot."""
    try:
        fn = torch.compile(lambda t: t * 2 + 1, dynamic=False)
        fn(torch.ones(4))
        return None
    except Exception as exc:  # no C++ compiler, unsupported Python, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
