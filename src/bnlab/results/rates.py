"""What a learning-rate grid says about a variant (``optimizer.lr_grid`` sweeps: resnet_lr).

For one variant (a normalization, or SkipInit / Fixup), over its runs at each rate of the grid:

* **trains at** a rate: no seed diverged there and the mean final val accuracy is at least
  TRAINS (0.5: five times chance on ten classes);
* **largest training rate**: the largest rate of the grid at which it trains (0 where none);
* **best rate**: the rate with the highest mean final val accuracy (diverged seeds left out);
* **steps to the target** at the best rate: the first evaluated step whose val accuracy reaches
  the experiment's ``target_accuracy``, per seed (:func:`bnlab.results.analysis.steps_to_reach`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bnlab.results.analysis import steps_to_reach, summary
from bnlab.results.tables import per_seed, select, with_variant

TRAINS = 0.5  # "trains": mean final val accuracy at least this, and no seed diverged


def rates(df: pd.DataFrame) -> list[float]:
    """The grid's rates, smallest first."""
    return sorted(pd.to_numeric(df["optimizer.lr"]).unique())


def final_by_rate(df: pd.DataFrame, variant: str) -> dict[float, tuple[float, float, int, int]]:
    """rate -> (mean, std, seeds kept, seeds diverged) of the final val accuracy."""
    table = select(per_seed(with_variant(df), "val", "accuracy"), variant=variant)
    return {lr: summary(select(table, optimizer__lr=lr)) for lr in rates(df)}


def trains(stats: tuple[float, float, int, int]) -> bool:
    """Whether runs whose final val accuracy has the :func:`~bnlab.results.analysis.summary`
    ``stats`` (mean, std, seeds kept, seeds diverged) train: no seed diverged and the mean is
    at least TRAINS."""
    mean, _, kept, diverged = stats
    return bool(kept and not diverged and mean >= TRAINS)


def largest_training_rate(df: pd.DataFrame, variant: str) -> float:
    """The largest rate at which ``variant`` trains (see the module doc); 0 where none."""
    by_rate = final_by_rate(df, variant)
    return max((lr for lr, stats in by_rate.items() if trains(stats)), default=0.0)


def best_rate(df: pd.DataFrame, variant: str) -> float:
    """The rate with the highest mean final val accuracy (NaN where every seed diverged)."""
    means = {lr: m for lr, (m, *_) in final_by_rate(df, variant).items() if np.isfinite(m)}
    return max(means, key=means.get) if means else float("nan")


def steps_to_target(df: pd.DataFrame, variant: str, lr: float) -> tuple[float, float]:
    """(mean, std) over seeds of the steps to the experiment's ``target_accuracy`` at ``lr``;
    seeds that never reached it are left out (NaN where none did)."""
    target = float(df["target_accuracy"].iloc[0])
    runs = select(with_variant(df), variant=variant, optimizer__lr=lr)
    steps = steps_to_reach(runs, target).dropna()
    if steps.empty:
        return float("nan"), float("nan")
    return float(steps.mean()), float(steps.std(ddof=1)) if len(steps) > 1 else 0.0
