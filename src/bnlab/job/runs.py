"""The runs of a job, one per replica, and the one place where a job's metrics reach them.

A job trains its runs as one replica-batched model: seeds ``seed .. seed+K-1`` (K =
``trainer.replicas``), and with ``optimizer.lr_grid`` those K seeds at each rate of the grid
(:func:`run_layout`). Every metric it measures is then a tensor with one entry per run.
:meth:`Runs.record` turns such tensors into rows of each run's metrics.csv and TensorBoard
events (one host transfer for all of them), for the runs that are still running; a run whose
training loss turned NaN, infinite or larger than ``trainer.divergence_loss`` is marked
``diverged`` and records nothing more.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from bnlab.config.schema import Config, config_dict, flatten
from bnlab.job.folder import seed_dirs
from bnlab.job.recorder import RunRecorder, truncate_metrics

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One seed's run: its folder, recorder, status and last value of every metric."""

    seed: int
    folder: Path
    label: str = ""  # how log lines name it: "seed 3", or its folder in the job's ("lr=0.1/seed=3")
    recorder: Optional[RunRecorder] = None
    status: str = "running"
    diverged_step: Optional[int] = None
    last: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "last": dict(self.last),
        }


def hparams_of(cfg: Config) -> dict[str, Any]:
    """Every scalar config key (lists as strings): the same keys for every run of a sweep."""
    return {
        k: (str(v) if v is None or isinstance(v, (list, tuple)) else v)
        for k, v in flatten(config_dict(cfg)).items()
    }


def run_axes(cfg: Config, axes: Sequence[str] = ()) -> list[str]:
    """The keys the runs of a job of ``cfg`` and of its sweep differ in: ``axes``, those its
    sweep varies (:func:`bnlab.job.folder.sweep_axes`; optimizer.lr_grid as the rate
    optimizer.lr, as each run records it), then seed where a job trains several seeds and
    optimizer.lr where it trains a grid of rates."""
    axes = ["optimizer.lr" if key == "optimizer.lr_grid" else key for key in axes]
    if cfg.trainer.replicas > 1:
        axes.append("seed")
    if cfg.optimizer.lr_grid:
        axes.append("optimizer.lr")
    return list(dict.fromkeys(axes))


class LossWindow:
    """Each replica's summed training loss since the last log step, kept on the device (no
    host transfer per step); ``mean_and_reset()`` at a log step."""

    def __init__(self, replicas: int, device: torch.device):
        self.total, self.steps = torch.zeros(replicas, device=device), 0

    def add(self, losses: Tensor) -> None:
        self.total += losses
        self.steps += 1

    def mean_and_reset(self) -> Tensor:
        mean = self.total / self.steps
        self.total.zero_()
        self.steps = 0
        return mean


def run_layout(cfg: Config, job_dir: Path) -> list[tuple[Config, Path, str]]:
    """The runs a job of ``cfg`` in ``job_dir`` trains, in replica order: for each rate of
    ``optimizer.lr_grid`` (or ``optimizer.lr`` alone), seeds ``seed .. seed+K-1``. Each as
    (the config that run would have if it were run alone: its seed, its rate, no grid; its
    folder: :func:`bnlab.job.folder.seed_dirs` of the job folder, or of one ``lr=<rate>`` folder
    per rate inside it; the label log lines name it by: its folder inside the job's, or
    ``seed <s>`` when that is the job's own)."""
    grid = cfg.optimizer.lr_grid
    seeds = [cfg.seed + r for r in range(cfg.trainer.replicas)]
    layout = []
    for lr in grid or [None]:
        base = job_dir if lr is None else job_dir / f"lr={lr!r}"
        optimizer = cfg.optimizer if lr is None else replace(cfg.optimizer, lr=lr, lr_grid=None)
        for seed, folder in zip(seeds, seed_dirs(base, seeds)):
            label = str(folder.relative_to(job_dir)) if folder != job_dir else f"seed {seed}"
            layout.append((replace(cfg, seed=seed, optimizer=optimizer), folder, label))
    return layout


class Runs:
    """The runs of a job of ``cfg`` in ``job_dir`` (:func:`run_layout`); ``axes``: the keys its
    sweep varies (TensorBoard's HParams tab lists :func:`run_axes` first)."""

    def __init__(self, cfg: Config, job_dir: Path, axes: Sequence[str] = ()):
        self.cfg = cfg
        self.axes = run_axes(cfg, axes)
        layout = run_layout(cfg, job_dir)
        self.run_cfgs = [c for c, _, _ in layout]
        self.runs = [Run(c.seed, folder, label) for c, folder, label in layout]
        self.seeds = [c.seed for c in self.run_cfgs]  # each replica's seed
        self.lrs = [c.optimizer.lr for c in self.run_cfgs]  # each replica's learning rate
        self.name = job_dir.name

    def configs(self) -> list[dict[str, Any]]:
        """Each run's resolved config (its own seed and rate), as written to its config.yaml."""
        return [config_dict(c) for c in self.run_cfgs]

    def live(self) -> list[Run]:
        return [r for r in self.runs if r.status == "running"]

    def open(self, step: int, **summary: Any) -> None:
        """Open each run's recorder (on a resume, at ``step``: later events are dropped) and
        write its first summary.json."""
        for run, run_cfg in zip(self.runs, self.run_cfgs):
            run.recorder = RunRecorder(
                run.folder,
                config_dict(run_cfg),
                hparams_of(run_cfg),
                purge_step=step + 1 if step else None,
                axes=self.axes,
            )
            run.recorder.write_summary(status=run.status, seed=run.seed, step=step, **summary)

    def restore(self, saved: list[dict[str, Any]], step: int) -> None:
        """Statuses and last metrics from a checkpoint at ``step``; rows after it are dropped."""
        for run, state in zip(self.runs, saved):
            run.status, run.diverged_step = state["status"], state["diverged_step"]
            run.last = dict(state["last"])
            truncate_metrics(run.folder / "metrics.csv", step)

    def record(self, step: int, metrics: dict[str, Tensor], final: bool = True) -> None:
        """Write ``{"split/metric": (K,) tensor}`` at ``step`` into every running run; with
        ``final``, the values also become the run's last (summary.json's ``final``)."""
        names = list(metrics)
        rows = torch.stack([metrics[n] for n in names]).T.cpu().tolist()
        for run, row in zip(self.runs, rows):
            if run.status != "running":
                continue
            for name, value in zip(names, row):
                split, metric = name.split("/", 1)
                run.recorder.log(step, split, metric, value)
                if final:
                    run.last[name] = value

    def record_training_loss(self, step: int, means: Tensor) -> None:
        """``train/loss`` (the window's mean); a run whose mean is NaN, infinite or above
        ``trainer.divergence_loss`` becomes ``diverged`` (its last finite loss stays)."""
        for run, value in zip(self.runs, means.cpu().tolist()):
            if run.status != "running":
                continue
            run.recorder.log(step, "train", "loss", value)
            if not math.isfinite(value) or value > self.cfg.trainer.divergence_loss:
                run.status, run.diverged_step = "diverged", step
                run.recorder.flush()
                log.warning(
                    "[%s] %s diverged: training loss %s at step %d",
                    self.name,
                    run.label,
                    value,
                    step,
                )
            else:
                run.last["train/loss"] = value

    def flush(self, step: int) -> None:
        """Make every running run's rows durable and its summary current (after evaluating)."""
        for run in self.live():
            run.recorder.flush()
            run.recorder.write_summary(step=step, final=run.last)

    def finish(self, outcome: str, error: Optional[str], **summary: Any) -> None:
        """The final status of every run (``outcome`` for those still running), its summary,
        its HParams entry; then close its files."""
        for run in self.runs:
            if run.recorder is None:  # the job failed before this run was opened
                continue
            if run.status == "running":
                run.status = outcome
            extra = {"error": error} if error and run.status == "failed" else {}
            run.recorder.write_summary(
                status=run.status,
                diverged_step=run.diverged_step,
                final=run.last,
                **summary,
                **extra,
            )
            run.recorder.close({k: v for k, v in run.last.items() if math.isfinite(v)})

    def summaries(self) -> list[dict[str, Any]]:
        return [run.recorder.summary for run in self.runs]

    def describe(self, metric: str) -> str:
        """``metric``'s last value over the running runs: one value, or mean +/- std (n); with
        a rate grid, that per rate (``lr=0.1: ...``)."""
        if len(set(self.lrs)) > 1:
            rates = dict.fromkeys(self.lrs)
            return "; ".join(f"lr={lr:g}: {self._describe(metric, lr)}" for lr in rates)
        return self._describe(metric)

    def _describe(self, metric: str, lr: Optional[float] = None) -> str:
        values = [
            r.last[metric]
            for r, rate in zip(self.runs, self.lrs)
            if r.status == "running" and (lr is None or rate == lr) and metric in r.last
        ]
        if not values:
            return "-"
        if len(values) == 1:
            return f"{values[0]:.4f}"
        return f"{np.mean(values):.4f} +/- {np.std(values):.4f} (n={len(values)})"
