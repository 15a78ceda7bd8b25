"""``make bench``: speed ratios measured side by side in one process (``python -m bnlab.bench``).

Every comparison interleaves its contenders round by round (A, B, A, B, ...), so a machine that
slows down mid-run slows both; each row gives the median time per call with the min-max over
rounds, and a ratio of medians. Sections:

1. layer: this project's BatchNorm vs ``nn.BatchNorm1d/2d``, forward + backward, per shape,
   eager and (when torch.compile works here) compiled;
2. train step: one SGD step of the paper's MLP (784-100x3-10, sigmoid, batch 60) with
   this project's BN vs ``nn.BatchNorm1d``, each in the same execution mode;
3. replicas: K=10 seeds as one batched model vs one seed at a time (model-steps per second);
4. fig1: the paper's Figure 1 run end to end (``run.py +experiment=paper_fig1``), wall time;
5. gpu: on CUDA, when a CUDA device is present: one seed eager and compiled, K=100 replicas
   compiled (steps per second);
6. suite: the wall time of every experiment's fast runs (``--full``: full-budget runs) in
   outputs/, read from their summary.json, and of all of them, with the reference step time
   (nn.BatchNorm1d's eager training step) measured now beside it;
7. bound: a training step of the two longest jobs (a Figure 1 job, a 64-layer depth job) on
   one thread, and its matrix products timed alone: their share of the step and GFLOP/s,
   beside a large product's GFLOP/s on this core (what bounds the suite's targets).

The last line is machine-readable:
``bench: bn_layer_ratio_large=... bn_layer_ratio_small=... train_step_ratio=...
replicas_speedup=... fig1_seconds=... suite_fast_seconds=...``. ``--quick`` runs every section
on a small budget (a smoke test of the script; its numbers are not the targets').
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from bnlab.allocator import keep_freed_memory
from bnlab.batches import BatchOrder, gather
from bnlab.batchnorm import BatchNorm
from bnlab.config import NormConfig
from bnlab.fastpaths import CompiledLosses, optimizer_step
from bnlab.models import MLP, replica_losses
from bnlab.norms.batch_renorm import BatchRenorm
from bnlab.norms.groupnorm import GroupNorm

LARGE_SHAPES = [(256, 1024), (128, 64, 32, 32), (32, 256, 8, 8)]
SMALL_SHAPE = (60, 100)


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


def compile_works() -> Optional[str]:
    """None when torch.compile can build a CPU kernel here, else the reason it cannot."""
    try:
        fn = torch.compile(lambda t: t * 2 + 1, dynamic=False)
        fn(torch.ones(4))
        return None
    except Exception as exc:  # no C++ compiler, unsupported Python, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


# ----------------------------------------------------------------------------- 1. layer


def layer_contenders(shape: tuple[int, ...], compiled: bool) -> dict[str, Callable[[], None]]:
    c = shape[1]
    x = torch.randn(shape, requires_grad=True)
    dy = torch.randn(shape)
    native = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c)
    layers = {"nn.BatchNorm": native, "bnlab eager": BatchNorm(c)}
    if compiled:
        layers["bnlab compiled"] = torch.compile(BatchNorm(c), dynamic=False)

    def fwd_bwd(layer):
        def call():
            layer(x).backward(dy)
            x.grad = None

        return call

    return {name: fwd_bwd(layer) for name, layer in layers.items()}


def bench_layers(quick: bool, compiled: bool, out) -> dict[str, float]:
    """Ratios to nn.BatchNorm per shape; returns the worst large-shape and the small ratio."""
    out("\n1. BatchNorm layer, forward + backward (median, min-max over rounds)")
    worst: dict[str, float] = {}
    for shape in LARGE_SHAPES + [SMALL_SHAPE]:
        numel = torch.Size(shape).numel()
        calls = max(1, min(2000, int(2e6 / numel))) if not quick else 2
        rounds = 3 if quick else 15
        timings = interleaved(layer_contenders(shape, compiled), calls, rounds)
        native = timings["nn.BatchNorm"].median
        kind = "small" if shape == SMALL_SHAPE else "large"
        for name, timing in timings.items():
            ratio = timing.median / native
            out(f"   {str(shape):20s} {name:16s} {timing.row()}   x{ratio:.2f}")
            if name != "nn.BatchNorm":
                key = f"{kind}:{name}"
                worst[key] = max(worst.get(key, 0.0), ratio)
    return worst


NORM_SHAPES = [(256, 1024), (128, 64, 32, 32)]


def bench_other_norms(quick: bool, out) -> dict[str, float]:
    """The normalizations beyond BN, eager, forward + backward, each against torch's own (and
    Batch Renorm, which torch lacks, against nn.BatchNorm); returns each one's worst ratio."""
    out("\n1b. Other normalizations, forward + backward, eager (vs torch's layer)")
    worst: dict[str, float] = {}
    for shape in NORM_SHAPES:
        c = shape[1]
        x, dy = torch.randn(shape, requires_grad=True), torch.randn(shape)
        pairs = {
            "group_norm": (GroupNorm(c, 4), nn.GroupNorm(4, c), "nn.GroupNorm"),
            "batch_renorm": (
                BatchRenorm(c),
                (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c),
                "nn.BatchNorm",
            ),
        }
        if len(shape) == 2:
            pairs["layer_norm"] = (GroupNorm(c, 1), nn.LayerNorm(c), "nn.LayerNorm")
        for name, (ours, theirs, label) in pairs.items():
            contenders = {label: _fwd_bwd(theirs, x, dy), f"bnlab {name}": _fwd_bwd(ours, x, dy)}
            calls = 2 if quick else max(1, min(500, int(2e6 / torch.Size(shape).numel())))
            timings = interleaved(contenders, calls, 3 if quick else 9)
            ratio = timings[f"bnlab {name}"].median / timings[label].median
            for who, timing in timings.items():
                out(f"   {str(shape):20s} {who:20s} {timing.row()}")
            out(f"   {str(shape):20s} {name}: x{ratio:.2f} of {label}")
            worst[f"{name}_ratio"] = max(worst.get(f"{name}_ratio", 0.0), ratio)
    return worst


def _fwd_bwd(layer, x, dy):
    def call():
        layer(x).backward(dy)
        x.grad = None

    return call


# ----------------------------------------------------------------------------- 2. and 3.


def step_contender(
    norm: str, replicas: int, compiled: bool, data: tuple[torch.Tensor, ...]
) -> Callable[[], None]:
    """One training step of the paper's MLP with ``replicas`` seeds, over fixed data."""
    x_train, y_train = data
    seeds = list(range(replicas))
    model = MLP(784, 10, norm=NormConfig(kind=norm), seeds=seeds).to(x_train.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, foreach=True)
    forward_and_loss = CompiledLosses() if compiled else replica_losses
    step_optimizer = optimizer_step(optimizer)
    order = BatchOrder(len(x_train), 60, seeds, x_train.device)
    counter = iter(range(1, 1 << 62))

    def call():  # the training loop's step (bnlab.train.training_loop)
        idx = order.indices(next(counter))
        losses = forward_and_loss(model, gather(x_train, idx), gather(y_train, idx))
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        step_optimizer()

    return call


def bench_train_step(quick: bool, compiled: bool, data, out) -> dict[str, float]:
    out("\n2. Training step, paper MLP (784-100x3-10, sigmoid, batch 60, SGD), one seed")
    modes = [False] + ([True] if compiled else [])
    ratios = {}
    for mode in modes:
        label = "compiled" if mode else "eager"
        contenders = {
            f"{norm} ({label})": step_contender(norm, 1, mode, data)
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


def bench_replicas(quick: bool, compiled: bool, data, out, k: int = 10) -> float:
    out(f"\n3. Seeds as one batched model (BN MLP): K={k} vs one seed at a time")
    """Best batched rate over the best serial rate (each in its fastest execution mode)."""
    serial, batched = {}, {}
    for mode in [False] + ([True] if compiled else []):
        label = "compiled" if mode else "eager"
        contenders = {
            f"K=1 ({label})": step_contender("bn", 1, mode, data),
            f"K={k} ({label})": step_contender("bn", k, mode, data),
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
    return speedup


# ----------------------------------------------------------------------------- 4. fig1


def bench_fig1(quick: bool, out) -> tuple[Optional[float], int]:
    """Wall time of the Figure 1 experiment through run.py, in a temporary output folder."""
    steps = 500 if quick else 50000
    root = Path.cwd()  # bnlab's folder, where `make bench` runs: run.py and data/
    mnist = (root / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()
    out(
        f"\n4. The paper's Figure 1 end to end: run.py +experiment=paper_fig1, {steps} steps"
        + ("" if mnist else " (MNIST absent: on Fashion-MNIST, same sizes)")
    )
    with (
        tempfile.TemporaryDirectory(prefix="bnlab-bench-") as tmp,
        tempfile.TemporaryDirectory(prefix="bnlab-bench-cache-") as cache,
    ):
        cmd = [
            sys.executable,
            str(root / "run.py"),
            "+experiment=paper_fig1",
            f"hydra.sweep.dir={tmp}",
            "trainer.progress=false",
            f"trainer.steps={steps}",
            f"data_dir={root / 'data'}",
        ]
        if not mnist:
            cmd.append("dataset=fashion_mnist")
        # an empty compile cache, so compiling counts in full, as on a fresh machine
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
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
        f"500 steps, records)"
    )
    for name, job in jobs.items():  # each job's own account, from its summary.json
        out(
            f"   {name}: {job['wall_time_s']:.1f} s in the trainer, {job['steps_per_second']:.0f} "
            f"steps/s, evaluation {job['eval_seconds']:.1f} s ({100 * job['eval_time_share']:.0f}%)"
        )
    return seconds, steps


# ----------------------------------------------------------------------------- 5. gpu


def bench_gpu(quick: bool, out, k: int = 100) -> dict[str, float]:
    """Steps per second on CUDA: one seed eager and compiled, then K seeds compiled."""
    out(f"\n5. GPU: the BN MLP, one seed (eager, compiled) and K={k} replicas (compiled)")
    if not torch.cuda.is_available():
        out("   skipped: no CUDA device")
        return {}
    device = torch.device("cuda")
    x = torch.rand(60000, 784, device=device)
    y = torch.randint(0, 10, (60000,), device=device)
    steps = 50 if quick else 2000
    rates = {}
    for label, replicas, compiled in (
        ("K=1 eager", 1, False),
        ("K=1 compiled", 1, True),
        (f"K={k} compiled", k, True),
    ):
        call = step_contender("bn", replicas, compiled, (x, y))
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


# ----------------------------------------------------------------------------- 6. suite


def experiment_names(conf: Path = Path("conf/experiment")) -> list[str]:
    """Every experiment with a figure (``<name>.yaml`` beside ``<name>_fast.yaml``), sorted."""
    return sorted(p.stem for p in conf.glob("*.yaml") if (conf / f"{p.stem}_fast.yaml").exists())


SITTING_GAP_S = 30.0  # idle seconds between runs that mark another invocation


def experiment_wall_time(folder: Path) -> tuple[Optional[float], int]:
    """(seconds, runs) of the experiment whose runs are under ``folder``: from the start of the
    work for the first of them to the end of the last (``began_at``: a job's process start, or
    its own where a process served several jobs; ``process_started_at`` in older runs; else
    ``started_at``; and ``finished_at`` in their summary.json). None when a run is
    unfinished, older than those fields, resumed, or when the runs were made in several
    sittings (an idle gap of more than SITTING_GAP_S between them): no one span times those."""
    summaries = [json.loads(p.read_text()) for p in folder.rglob("summary.json")]
    spans = [
        (
            s.get("began_at") or s.get("process_started_at") or s.get("started_at"),
            s.get("finished_at"),
        )
        for s in summaries
    ]
    if not summaries or any(None in span for span in spans):
        return None, len(summaries)
    if any(s.get("resumes") for s in summaries):
        return None, len(summaries)
    spans.sort()
    end = spans[0][1]
    for start, finish in spans[1:]:
        if start > end + SITTING_GAP_S:
            return None, len(summaries)
        end = max(end, finish)
    return end - spans[0][0], len(summaries)


@contextmanager
def one_thread():
    """torch on one thread within the block (as the suite's jobs run), as before after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def reference_step_ms(data, quick: bool) -> float:
    """The eager nn.BatchNorm1d training step of the paper's MLP (section 2's reference), ms,
    on one thread: how the suite's jobs run (two one-thread jobs at a time)."""
    with one_thread():
        contender = step_contender("torch", 1, False, data)
        timing = interleaved({"torch": contender}, 5 if quick else 100, 5)
    return 1000 * timing["torch"].median


def bench_suite(full: bool, data, quick: bool, out, outputs: Path = Path("outputs")) -> dict:
    """Wall time of every experiment's runs in ``outputs/`` (``<name>_fast``, or ``<name>``
    with ``full``) and their sum, the time ``make figures`` takes to run them one after
    another, with this machine's reference step time now and the sum scaled to a 1.4 ms one.
    Experiments without timed runs (paper_fig1 without MNIST, say) are named in
    ``suite_missing`` and left out of the sum."""
    budget = "full" if full else "fast"
    out(f"\n6. Suite: every experiment's {budget} run, from its run folders' summary.json")
    if not Path("conf/experiment").is_dir():
        out("   skipped: run from bnlab's folder (where conf/ and outputs/ are)")
        return {f"suite_{budget}_seconds": "missing"}
    ref = reference_step_ms(data, quick)
    total, missing, names = 0.0, [], experiment_names()
    for name in names:
        folder = outputs / (name if full else f"{name}_fast")
        seconds, runs = experiment_wall_time(folder)
        if seconds is None:
            missing.append(name)
            why = (
                "no runs"
                if runs == 0
                else "not timed (unfinished, resumed, made in several sittings, or untimed)"
            )
            out(f"   {name:20s} {why}")
            continue
        total += seconds
        out(f"   {name:20s} {seconds:7.1f} s  ({runs} runs)")
    scaled = total * REFERENCE_STEP_MS / ref
    out(
        f"   all {total:.0f} s{' (missing: ' + ', '.join(missing) + ')' if missing else ''}; "
        f"reference step (nn.BatchNorm1d, eager) now {ref:.2f} ms: at {REFERENCE_STEP_MS} ms "
        f"about {scaled:.0f} s"
    )
    key = f"suite_{budget}_seconds"
    found = len(missing) < len(names)
    return {
        key: total if found else "missing",
        f"{key}_at_ref": scaled if found else "missing",
        "reference_step_ms": ref,
        "suite_missing": ",".join(missing) or "none",
    }


REFERENCE_STEP_MS = 1.4  # the step time at which the suite's targets are read (docs/speed.md)


# ----------------------------------------------------------------------------- 7. bound


def step_time_ms(overrides: list[str], steps: tuple[int, int]) -> float:
    """Wall ms per training step of the job ``overrides`` (run.py's, on one thread): two runs
    of ``steps`` = (a, b) steps, differenced (set-up, compiling and the final evaluation cancel)."""
    import tempfile

    from bnlab.launch import compose
    from bnlab.train import run_job

    def run(n: int) -> float:
        cfg = compose([*overrides, f"trainer.steps={n}", f"trainer.eval_every={n}"])
        with tempfile.TemporaryDirectory(prefix="bnlab-bench-") as tmp:
            start = time.perf_counter()
            run_job(cfg, Path(tmp), 1)
            return time.perf_counter() - start

    with one_thread():
        run(steps[0])  # warm: data, compile cache
        return 1000 * (run(steps[1]) - run(steps[0])) / (steps[1] - steps[0])


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


def bench_bound(quick: bool, out) -> dict[str, float]:
    """Section 7: how much of a step of the suite's two longest jobs is matrix products."""
    out(
        "\n7. Bound: a training step of the longest jobs, one thread: the whole step (two runs "
        "differenced) and its matrix products timed alone"
    )
    if not Path("conf/experiment").is_dir():
        out("   skipped: run from bnlab's folder (where conf/ is)")
        return {}
    mnist = Path("data/MNIST/raw/t10k-labels-idx1-ubyte").exists()
    jobs = {  # key: (label, overrides, steps differenced, layer widths, replicas)
        "fig1": (
            "paper_fig1, BN, 5 seeds as one compiled model",
            ["+experiment=paper_fig1", "norm=bn", "trainer.probe_every=0"]
            + ([] if mnist else ["dataset=fashion_mnist"]),
            (20, 60) if quick else (200, 2200),
            [784, 100, 100, 100, 10],
            5,
        ),
        "depth": (
            "depth, 64 layers, ReLU + BN, 9 runs as one model",
            ["+experiment=depth", "model=mlp_relu", "norm=bn", "model.depth=64"],
            (2, 6) if quick else (10, 110),
            [784] + [100] * 64 + [10],
            9,
        ),
    }
    results = {}
    for key, (label, overrides, steps, sizes, replicas) in jobs.items():
        step_ms = step_time_ms([*overrides, "device=cpu", "trainer.progress=false"], steps)
        products_ms, gflops = step_products(sizes, replicas, 60, 2 if quick else 7)
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


# ----------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlab.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small budget: checks the script")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["layer", "norms", "step", "replicas", "fig1", "gpu", "suite", "bound"],
    )
    parser.add_argument(
        "--full", action="store_true", help="suite: the full-budget runs, not the fast ones"
    )
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()
    torch.manual_seed(0)
    reason = compile_works()
    out(
        f"bnlab bench: {os.cpu_count()} cores, {args.threads} torch threads, torch "
        f"{torch.__version__}, Python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}, "
        f"cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}"
    )
    out(
        f"allocator: freed memory kept in-process: {allocator}; torch.compile: "
        + ("works" if reason is None else f"unavailable ({reason})")
    )
    compiled = reason is None
    data = (torch.rand(10000, 784), torch.randint(0, 10, (10000,)))
    results: dict[str, object] = {}
    if "layer" not in args.skip:
        worst = bench_layers(args.quick, compiled, out)
        for kind in ("large", "small"):
            results[f"bn_layer_ratio_{kind}"] = worst[f"{kind}:bnlab eager"]
            if compiled:
                results[f"bn_layer_ratio_{kind}_compiled"] = worst[f"{kind}:bnlab compiled"]
    if "norms" not in args.skip:
        results.update(bench_other_norms(args.quick, out))
    if "step" not in args.skip:
        ratios = bench_train_step(args.quick, compiled, data, out)
        results["train_step_ratio"] = ratios["eager"]
        if compiled:
            results["train_step_ratio_compiled"] = ratios["compiled"]
    if "replicas" not in args.skip:
        results["replicas_speedup"] = bench_replicas(args.quick, compiled, data, out)
    if "fig1" not in args.skip:
        seconds, steps = bench_fig1(args.quick, out)
        results["fig1_seconds"] = seconds
        if steps != 50000:
            results["fig1_steps"] = steps
    if "gpu" not in args.skip:
        results.update(bench_gpu(args.quick, out))
    if "suite" not in args.skip:
        results.update(bench_suite(args.full, data, args.quick, out))
    if "bound" not in args.skip:
        results.update(bench_bound(args.quick, out))
    out("bench: " + " ".join(f"{k}={_fmt(v)}" for k, v in results.items()))
    return 0


def _fmt(value: object) -> str:
    if value is None:
        return "failed"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
