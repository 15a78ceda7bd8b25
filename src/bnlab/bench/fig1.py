"""Section 4, fig1: the paper's Figure 1 experiment end to end through ``run.py
+experiment=paper_fig1`` in a temporary output folder, at its configured number of steps
(``--quick``: 500), compiling from an empty cache. Measured: the command's wall time, and each
job's own account from its summary.json (trainer time, steps per second, evaluation time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from bnlab.bench.context import Bench
from bnlab.bench.shapes import fig1_overrides, mnist_present

QUICK_STEPS = 500


def fig1_command(root: Path, sweep_dir: str, steps: int) -> list[str]:
    """run.py's command line for paper_fig1 at ``steps`` steps, its runs under ``sweep_dir``."""
    experiment, *dataset = fig1_overrides()  # dataset=fashion_mnist where MNIST is absent
    return [
        sys.executable,
        str(root / "run.py"),
        experiment,
        f"hydra.sweep.dir={sweep_dir}",
        "trainer.progress=false",
        f"trainer.steps={steps}",
        f"data_dir={root / 'data'}",
        *dataset,
    ]


def bench_fig1(bench: Bench) -> tuple[Optional[float], int]:
    """(wall seconds or None where it failed, steps) of the Figure 1 experiment."""
    trainer, out = bench.fig1_config.trainer, bench.out
    steps = QUICK_STEPS if bench.quick else trainer.steps
    root = Path.cwd()  # bnlab's folder, where `make bench` runs: run.py and data/
    out(
        f"\n4. The paper's Figure 1 end to end: run.py +experiment=paper_fig1, {steps} steps"
        + ("" if mnist_present() else " (MNIST absent: on Fashion-MNIST, same sizes)")
    )
    with (
        tempfile.TemporaryDirectory(prefix="bnlab-bench-") as tmp,
        tempfile.TemporaryDirectory(prefix="bnlab-bench-cache-") as cache,
    ):
        # an empty compile cache, so compiling counts in full, as on a fresh machine
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
        start = time.perf_counter()
        proc = subprocess.run(
            fig1_command(root, tmp, steps), capture_output=True, text=True, env=env
        )
        seconds = time.perf_counter() - start
        jobs = {
            p.parent.parent.name: json.loads(p.read_text())
            for p in sorted(Path(tmp).glob("*/seed=0/summary.json"))
        }
    if proc.returncode != 0:
        out("   failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1])
        return None, steps
    out(
        f"   {seconds:.1f} s (set-up, compile from an empty cache, training, evaluation every "
        f"{trainer.eval_every} steps, records)"
    )
    for name, job in jobs.items():  # each job's own account, from its summary.json
        out(
            f"   {name}: {job['wall_time_s']:.1f} s in the trainer, {job['steps_per_second']:.0f} "
            f"steps/s, evaluation {job['eval_seconds']:.1f} s ({100 * job['eval_time_share']:.0f}%)"
        )
    return seconds, steps


def run(bench: Bench) -> dict[str, object]:
    """``fig1_seconds``, and ``fig1_steps`` where they are not the experiment's."""
    seconds, steps = bench_fig1(bench)
    results: dict[str, object] = {"fig1_seconds": seconds}
    if steps != bench.fig1_config.trainer.steps:
        results["fig1_steps"] = steps
    return results
