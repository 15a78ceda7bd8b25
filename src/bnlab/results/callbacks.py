"""Hydra callback: when a sweep ends, print and save the comparison of its runs, and report
the jobs refused for a bad value (the sweep then exits with status 2)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bnlab.job.folder import clear_refusals, refusals


def summarize(folder: Path, target: float, job_dirs: Sequence[Path] = ()) -> str | None:
    """Compare the runs of ``job_dirs`` (all runs under ``folder`` if none are given); write
    ``comparison.csv`` in ``folder`` and return the table as text."""
    import pandas as pd  # here: Hydra loads this callback at start-up, every run pays it

    from bnlab.results.analysis import compare, format_comparison, load_runs

    if job_dirs:
        frames = [load_runs(d).assign(run=lambda f, d=d: d.name + "/" + f["run"]) for d in job_dirs]
        df = pd.concat(frames, ignore_index=True)
    else:
        df = load_runs(folder)
    if df.empty:
        return None
    table = compare(df, target)
    table.to_csv(folder / "comparison.csv", index=False)
    return format_comparison(table, target)


class ComparisonCallback(Callback):
    """Prints per-variant mean +/- std over seeds at the end of a multirun (comparison.csv).

    Only the jobs of this sweep are compared (collected as they end); where jobs run in other
    processes (parallel launchers), every run under the sweep folder is.
    """

    def __init__(self) -> None:
        self.job_dirs: list[Path] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.job_dirs = []
        clear_refusals(Path(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        output_dir = getattr(job_return, "working_dir", None)
        hydra_cfg = getattr(job_return, "hydra_cfg", None)
        if hydra_cfg is not None:
            output_dir = hydra_cfg.hydra.runtime.output_dir
        if output_dir:
            self.job_dirs.append(Path(output_dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        text = summarize(folder, float(config.target_accuracy), self.job_dirs)
        if text:
            print(f"\nComparison over seeds ({folder}/comparison.csv):\n{text}\n", flush=True)
        refused = refusals(folder)
        if refused:  # every other job ran; the sweep as a whole did not succeed
            for line in refused:
                print(f"bnlab: error: {line}", file=sys.stderr)
            print(f"bnlab: {len(refused)} job(s) of the sweep refused (above)", file=sys.stderr)
            sys.exit(2)
