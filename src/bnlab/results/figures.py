"""Shared plumbing for the experiments' figures (experiments/<name>.py): mean +/- interval
bands, lines over a swept key, saving PNG + PDF with the data's provenance. Variants' labels
and colours come from :mod:`bnlab.results.variants`."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnlab.results.analysis import curves, final_table, mean_interval
from bnlab.results.variants import styles

NORMS = styles(["none", "bn", "batch_renorm", "layer", "group"])  # figures comparing norms


def figure_dir(budget: str = "full") -> Path:
    """Where figures go: outputs/figures/ for the full budget, else outputs/figures/<budget>/
    (relative to the working directory, like the runs' outputs/)."""
    return Path("outputs") / "figures" / ("" if budget == "full" else budget)


def band(ax, curve: pd.DataFrame, label: str, colour: str, linestyle: str = "-") -> None:
    """A mean line with its shaded interval (``curve``: :func:`bnlab.results.analysis.curves`)."""
    ax.plot(curve["step"], curve["mean"], linestyle, color=colour, label=label, lw=1.6)
    ax.fill_between(curve["step"], curve["lo"], curve["hi"], color=colour, alpha=0.2, lw=0)


def seed_range(runs: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """Per step of ``split/metric``: the mean over seeds and the band from the lowest to the
    highest seed (columns step, mean, lo, hi: :func:`band`'s), for two or three seeds where a
    95% interval says little."""
    values = runs[(runs["split"] == split) & (runs["metric"] == metric)].groupby("step")["value"]
    return values.agg(mean="mean", lo="min", hi="max").reset_index()


def variant_curves(ax, variants, split: str, metric: str) -> None:
    """One mean +/- interval curve per (label, colour, linestyle, runs DataFrame) in
    ``variants``, for ``split/metric`` over steps; diverged runs left out."""
    for label, colour, linestyle, sub in variants:
        healthy = sub[sub["status"] != "diverged"]
        if not healthy.empty:
            band(ax, curves(healthy, split, metric), label, colour, linestyle)
    ax.set_xlabel("training step")
    ax.grid(alpha=0.3)


def loss_and_accuracy(variants, title: str, path: Path, accuracy_ylim=(0.6, 0.92)) -> Path:
    """Two panels over training, one curve per variant: training loss (log scale, train mode)
    and validation accuracy (eval mode). ``variants`` as for :func:`variant_curves`."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    variant_curves(ax1, variants, "train", "loss")
    ax1.set_yscale("log")
    ax1.set_ylabel("training loss (train mode)")
    ax1.legend(fontsize=8)
    variant_curves(ax2, variants, "val", "accuracy")
    ax2.set_ylabel("validation accuracy (eval mode)")
    ax2.set_ylim(*accuracy_ylim)
    fig.suptitle(title)
    return save(fig, path, pd.concat([runs for *_, runs in variants]))


def log2_axis(ax, values) -> None:
    """A log2 x axis labelled with the values themselves (batch sizes, depths)."""
    values = sorted(values)
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.grid(alpha=0.3)


def final_lines(ax, table: pd.DataFrame, x: str, by: str, styles: dict, spread="interval") -> None:
    """Per value of ``by`` (styles: value -> (label, colour)): the mean over seeds of the final
    ``value`` against ``x`` with its 95% interval (``spread="range"``: the band from the lowest
    to the highest seed, for two or three seeds); diverged seeds as black crosses at their last
    recorded value, left out of the mean."""
    crossed = False
    for key, (label, colour) in styles.items():
        rows = table[table[by].astype(str) == str(key)]
        if rows.empty:
            continue
        healthy = rows[rows["status"] != "diverged"]
        points = [
            (xv, g["value"].mean(), g["value"].min(), g["value"].max(), *mean_interval(g["value"]))
            for xv, g in healthy.groupby(x)
        ]
        if points:
            xs, means, lows, highs, _, halves, _ = (np.array(v, dtype=float) for v in zip(*points))
            if spread == "interval":
                lows, highs = means - np.nan_to_num(halves), means + np.nan_to_num(halves)
            ax.plot(xs, means, "o-", color=colour, label=label)
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.2, lw=0)
        bad = rows[rows["status"] == "diverged"]
        if not bad.empty:
            ax.scatter(
                bad[x],
                bad["value"].fillna(0.1),
                marker="x",
                color="black",
                zorder=4,
                label=None if crossed else "diverged seed (last value)",
            )
            crossed = True


FINAL_PANELS = (
    ("val", "accuracy", "final validation accuracy (eval mode)"),
    ("train", "loss", "training loss, last window (train mode)"),
)


def accuracy_and_loss_against(
    df: pd.DataFrame, x: str, by: str, styles: dict, xlabel: str, spread: str = "interval"
):
    """Two panels: the final validation accuracy and the last training loss against config
    key ``x`` (a log2 axis), one line per value of column ``by`` in ``styles`` (value ->
    (label, colour); ``spread``: :func:`final_lines`'); returns (fig, axes) for the caller's
    ticks, title and save."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    for ax, (split, metric, ylabel) in zip(axes, FINAL_PANELS):
        table = final_table(df, split, metric)
        final_lines(ax, table, x, by, styles, spread)
        log2_axis(ax, table[x].astype(int).unique())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    return fig, axes


def data_note(data: pd.DataFrame) -> str:
    """``data: commit 1a2b3c4`` (each commit, with its uncommitted changes, that made ``data``)."""
    return "data: " + "; ".join(sorted(set(data["code"]))) if "code" in data else ""


def save(fig, path: Path, data: pd.DataFrame | None = None) -> Path:
    """Write ``path`` (PNG) and the same figure as PDF beside it; with ``data`` (the runs it
    was drawn from), a footnote names the code that made them (:func:`data_note`)."""
    if data is not None and not data.empty:
        fig.text(0.995, 0.0, data_note(data), ha="right", va="top", fontsize=6, color="0.45")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def seeds_text(df: pd.DataFrame) -> str:
    """ "1 seed", "3 seeds": how many seeds the runs in ``df`` have, for a figure's title."""
    n = df["seed"].nunique()
    return f"{n} seed{'s' * (n != 1)}"
