"""``make bench``: speed ratios measured side by side in one process (``python -m bnlab.bench``).

Every comparison interleaves its contenders round by round (A, B, A, B, ...), so a machine that
slows down mid-run slows both; each row gives the median time per call with the min-max over
rounds, and a ratio of medians. The shapes of the experiments it times (the paper's Figure 1
MLP, 784-100x3-10, sigmoid, batch 60; the depth experiment's) are read from their configs in
conf/experiment/. Sections, one module each, run in this order (``--skip`` names them):

1. layer: this project's BatchNorm vs ``nn.BatchNorm1d/2d``, forward + backward, per shape,
   eager and (when torch.compile works) compiled; norms (1b): the other normalizations vs
   torch's; sync (1c): BN synchronized over 2 data-parallel workers vs BN per worker;
2. step: one SGD step of the paper's MLP with this project's BN vs ``nn.BatchNorm1d``, each in
   the same execution mode;
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

from typing import Callable

from bnlab.bench import bound, fig1, gpu, layer, norms, replicas, step, suite, sync
from bnlab.bench.context import Bench
from bnlab.bench.suite import SITTING_GAP_S, experiment_names, experiment_wall_time

# The sections in the order they run: name (for --skip) -> section(bench) -> {result: value}
SECTIONS: dict[str, Callable[[Bench], dict[str, object]]] = {
    "layer": layer.run,
    "norms": norms.run,
    "sync": sync.run,
    "step": step.run,
    "replicas": replicas.run,
    "fig1": fig1.run,
    "gpu": gpu.run,
    "suite": suite.run,
    "bound": bound.run,
}

__all__ = ["SECTIONS", "SITTING_GAP_S", "Bench", "experiment_names", "experiment_wall_time"]
