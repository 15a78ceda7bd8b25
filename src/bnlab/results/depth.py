"""The measures of the depth experiments, from run folders
(:func:`bnlab.results.analysis.load_runs`).

A run with ``trainer.grad_norm_every`` records ``grad_norm/layer<i>`` = ||dL/dW_i||, the norm of
the loss gradient with respect to layer i's weights, at step 0 and every n steps: layer 1 is
the input layer (784 -> width), layers 2 .. L the hidden-to-hidden layers of an MLP of depth L,
layer L + 1 the head. From those:

* the growth factor at initialization, per run: exp(-slope) of the least-squares line through
  log ||dL/dW_i|| over the hidden-to-hidden layers i = 2 .. L
  (:func:`bnlab.training.probes.growth_factor`; a norm that under- or overflowed float32, 0
  or infinite, is left out of the fit), so 1.21 means the norm grows by 21% per layer from
  the last layer to the first; Yang et al. (2019) predict sqrt(pi / (pi - 1)) = 1.21 for a
  wide ReLU network with BN and a large batch;
* the dynamic range at each recorded step: max_i ||dL/dW_i|| / min_i ||dL/dW_i|| over all layers;
* the best rate of a grid (``optimizer.lr_grid``) per cell: the rate whose mean final
  validation accuracy over seeds is highest, a diverged seed counting as chance (0.1).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from bnlab.results.analysis import final_table, runs_table
from bnlab.results.variants import label, variant
from bnlab.training.probes import growth_factor

THEORY_RELU_BN = math.sqrt(math.pi / (math.pi - 1))  # Yang et al.'s per-layer gradient growth
CHANCE = 0.1  # the accuracy a diverged run is counted at (10 classes)
VARIANTS = ("none", "none + skips", "bn", "bn + skips")  # the depth sweep's, in its order
CELL = ["model.activation", "variant", "model.depth"]  # one cell of the depth sweep


def geometric_mean(values) -> float:
    """exp(mean(log v)), NaNs left out: the mean of a quantity that spans decades (gradient
    norms, their dynamic range) over seeds."""
    with np.errstate(divide="ignore"):  # a norm that underflowed to 0: log 0 = -inf, mean 0
        logs = np.log(np.asarray(values, dtype=float))
    logs = logs[~np.isnan(logs)]
    return float(np.exp(logs.mean())) if len(logs) else np.nan


def with_variant(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``variant`` column: each run's variant label (``BN + skips``,
    :mod:`bnlab.results.variants`), as the depth figure and table write it."""
    return df.assign(variant=variant(df).map(label))


def layer_norms(df: pd.DataFrame) -> pd.DataFrame:
    """The ``grad_norm`` rows of ``df`` with the layer as a number (``layer``)."""
    rows = df[(df["split"] == "grad_norm") & df["metric"].str.startswith("layer")]
    return rows.assign(layer=rows["metric"].str.removeprefix("layer").astype(int))


def growth_at_init(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its config and ``growth``, the per-layer growth factor of the gradient
    norm at step 0 over layers 2 .. L (NaN for fewer than 2 such layers)."""
    norms = layer_norms(df[df["step"] == 0])
    norms = norms[np.isfinite(norms["value"]) & (norms["value"] > 0)]  # under/overflowed: out
    runs = with_variant(runs_table(df)).set_index("run")
    growth = {}
    for run, rows in norms.groupby("run"):
        depth = int(runs.loc[run, "model.depth"])
        hidden = rows[(rows["layer"] >= 2) & (rows["layer"] <= depth)].sort_values("layer")
        layers = torch.tensor(hidden["layer"].to_numpy(), dtype=torch.float64)
        values = torch.tensor(hidden["value"].to_numpy(), dtype=torch.float64)
        growth[run] = (
            float(growth_factor(values[:, None], layers)[0]) if len(values) >= 2 else np.nan
        )
    return runs.join(pd.Series(growth, name="growth")).reset_index()


def dynamic_range(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and recorded step: ``range`` = max / min gradient norm over the layers
    (NaN where a norm is not a positive number: a diverged run's)."""
    norms = layer_norms(df)
    value = norms["value"].where(np.isfinite(norms["value"]) & (norms["value"] > 0))
    grouped = norms.assign(value=value).groupby(["run", "step"])["value"]
    spread = grouped.max() / grouped.min()
    spread[grouped.count() < grouped.size()] = np.nan
    return spread.rename("range").reset_index()


def best_rates(df: pd.DataFrame, split: str = "val", metric: str = "accuracy") -> pd.DataFrame:
    """One row per cell (:data:`CELL`): the best rate of the grid (``optimizer.lr``), the mean
    and std over seeds of the final ``split/metric`` at that rate (a diverged seed counted at
    :data:`CHANCE`), the number of seeds and how many of them diverged, and
    ``all_diverged``: every run of the cell, at every rate, diverged (the "best" rate is then
    only the first of a tie)."""
    table = with_variant(final_table(df, split, metric))
    table["value"] = table["value"].where(table["status"] != "diverged", CHANCE)
    table["diverged"] = table["status"] == "diverged"
    per_rate = (
        table.groupby([*CELL, "optimizer.lr"])
        .agg(
            mean=("value", "mean"),
            std=("value", "std"),
            seeds=("value", "size"),
            diverged=("diverged", "sum"),
        )
        .reset_index()
    )
    best = per_rate.loc[per_rate.groupby(CELL)["mean"].idxmax()]
    every = table.groupby(CELL)["diverged"].all().rename("all_diverged").reset_index()
    return best.merge(every, on=CELL).sort_values(CELL).reset_index(drop=True)


def deepest_trained(best: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per activation and variant: the deepest depth whose best-rate mean reached ``threshold``
    with every shallower depth reaching it too, and the first depth that did not (NaN: none
    failed)."""
    rows = []
    for (activation, name), cells in best.groupby(["model.activation", "variant"]):
        cells = cells.sort_values("model.depth")
        ok = (cells["mean"] >= threshold).to_numpy()
        depths = cells["model.depth"].astype(int).to_numpy()
        fail = len(ok) if ok.all() else int(np.argmin(ok))  # the first depth that failed
        rows.append(
            {
                "model.activation": activation,
                "variant": name,
                "deepest trained": depths[fail - 1] if fail > 0 else np.nan,
                "first failed": depths[fail] if fail < len(ok) else np.nan,
            }
        )
    return pd.DataFrame(rows)
