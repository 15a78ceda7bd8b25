"""``make figures``: every experiment's figures, in one process,
``python -m bnlab.suite [--budget full|cpu|fast] [--out DIR] [names...]`` (one name: that
experiment only; ``--fast`` is ``--budget fast``).

Each experiment (:mod:`bnlab.catalog`) is run where its runs are missing, at the budget asked
for (``fast``: its small overlay ``<name>_fast``; ``cpu``: a GPU-scale experiment's CPU budget
``<name>_cpu``, the others' full one), then its module's ``draw(df, out)`` draws the figures
from the runs; the modules only draw. At the full budget a GPU-scale experiment (hours on a
CPU) is run only on a GPU or with ``GPU_SCALE=1``; elsewhere it is drawn from the runs already
in its folder (a GPU machine's, unpacked there), or skipped with a line saying so.

In one process the experiments share Python, torch, Hydra and the joblib launcher's two worker
processes instead of starting them once each (about 8 s per experiment on 2 cores, 2 minutes
over the suite), and they run one after another in a background thread while the figures of
those done are drawn here (:func:`bnlab.launch.trained_in_background`). An experiment whose
data cannot be had (MNIST for paper_fig1, say) draws from its module's ``FALLBACK`` experiment
instead. A figure that fails is named at the end and the others still draw; what finished stays
written, and running again resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from bnlab import catalog
from bnlab.errors import exit_status
from bnlab.launch import run_experiment, trained_in_background
from bnlab.results.analysis import load_runs
from bnlab.results.figures import figure_dir

OUTPUTS = Path("outputs")


def gpu_scale_here() -> bool:
    """Whether full-budget GPU-scale experiments run here: on a GPU, or asked (GPU_SCALE=1)."""
    return os.environ.get("GPU_SCALE") == "1" or torch.cuda.is_available()


def runs_of(experiment: catalog.Experiment, budget: str):
    """The experiment's runs (run first where missing), or its ``FALLBACK``'s where it could
    not run here; (the runs' DataFrame, the folder, run.py's exit status)."""
    name = experiment.config(budget)
    if budget == "full" and experiment.gpu_scale and not gpu_scale_here():
        return load_runs(OUTPUTS / name), OUTPUTS / name, 0  # what a GPU machine wrote
    status = run_experiment(name)  # trains nothing where the runs finished
    df = load_runs(OUTPUTS / name)
    fallback = getattr(experiment.module, "FALLBACK", None)
    if fallback and (status != 0 or df.empty):
        print(f"{experiment.name} could not run here: drawing from {fallback} instead")
        name = catalog.named([fallback])[0].config(budget)
        status = run_experiment(name)
        df = load_runs(OUTPUTS / name)
    return df, OUTPUTS / name, status


def skipped(experiment: catalog.Experiment, budget: str) -> bool:
    """A GPU-scale experiment at the full budget, with no runs here and no GPU: say so."""
    if budget != "full" or not experiment.gpu_scale or gpu_scale_here():
        return False
    if not load_runs(OUTPUTS / experiment.name).empty:
        return False  # drawn from the runs a GPU machine made
    print(
        f"{experiment.name}: sized for a GPU (hours on this CPU): skipped. Its CPU budget: "
        f"make figures BUDGET=cpu (python -m bnlab.suite --budget cpu {experiment.name}); "
        f"GPU_SCALE=1 runs the full budget here anyway"
    )
    return True


def draw(experiment: catalog.Experiment, budget: str, out: Path) -> int:
    """Draw the experiment's figures into ``out``: 0, or 1 after one line saying why not
    (``HYDRA_FULL_ERROR=1``: the traceback too)."""
    try:
        if not experiment.trains:  # drawn from theory alone
            if (catalog.CONFIGS / f"{experiment.name}.yaml").is_file():
                print(f"bnlab: error: {experiment.name} has no {experiment.name}_fast.yaml")
                return 1
            experiment.module.draw(out)
            return 0
        df, folder, status = runs_of(experiment, budget)
        if df.empty:
            print(f"no results under {folder} (the run exited with status {status})")
            return 1
        experiment.module.draw(df, out)
        return 0
    except (SystemExit, Exception) as exc:
        return exit_status(exc, experiment.path.name, with_type=True)
    finally:
        plt.close("all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="experiments to draw (default: all)")
    parser.add_argument("--budget", choices=catalog.BUDGETS, default="full")
    parser.add_argument("--fast", action="store_const", const="fast", dest="budget")
    parser.add_argument("--out", type=Path, help="default: outputs/figures/ (or .../<budget>)")
    args = parser.parse_args(argv)
    if not Path("run.py").is_file():
        raise SystemExit("bnlab: error: run the suite from bnlab's folder (where run.py is)")
    out = args.out or figure_dir(args.budget)
    failed, start = [], time.perf_counter()
    chosen = [e for e in catalog.named(args.names) if not skipped(e, args.budget)]
    here = args.budget != "full" or gpu_scale_here()
    to_train = [e.config(args.budget) for e in chosen if e.trains and (here or not e.gpu_scale)]
    try:
        with trained_in_background(to_train):  # the figures of those done are drawn here
            for experiment in chosen:
                print(f"== {catalog.MODULES / experiment.path.name}", flush=True)
                if draw(experiment, args.budget, out) != 0:
                    failed.append(experiment.name)
    except KeyboardInterrupt:
        print("bnlab: interrupted; finished runs are kept, run again to go on", file=sys.stderr)
        return 130
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"== suite: {minutes} min {seconds} s", flush=True)
    if failed:
        print(f"bnlab: error: figures not drawn: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
