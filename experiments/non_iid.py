"""Non-i.i.d. mini-batches (non_iid.png): final validation accuracy per normalization with
ordinary batches and with batches of 2 classes each (eval mode; mean over 3 seeds with a 95%
interval, the seeds as dots). From the non_iid experiment.
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results.analysis import final_table, mean_interval
from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import NORMS, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table


def draw(df, out):
    table = final_table(df, "val", "accuracy")
    table["batches"] = table["dataset.classes_per_batch"].map(
        lambda k: (
            "i.i.d." if k is None or (isinstance(k, float) and np.isnan(k)) else f"{int(k)} classes"
        )
    )
    kinds = [k for k in NORMS if k in set(table["norm.kind"])]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    for j, (batches, marker) in enumerate(sorted(zip(table["batches"].unique(), "os"))):
        for i, kind in enumerate(kinds):
            rows = table[(table["norm.kind"] == kind) & (table["batches"] == batches)]
            x = i + (j - 0.5) * 0.3
            mean, half, _ = mean_interval(rows["value"])
            colour = NORMS[kind][1]
            ax.scatter(np.full(len(rows), x), rows["value"], color=colour, alpha=0.4, s=12)
            ax.errorbar(
                x,
                mean,
                yerr=None if np.isnan(half) else half,
                fmt=marker,
                color=colour,
                mfc="white" if j else colour,
                capsize=4,
                label=batches if i == 0 else None,
            )
    ax.set_xticks(range(len(kinds)), [NORMS[k][0] for k in kinds])
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(title="training batches", fontsize=8)
    ax.set_title(
        f"Non-i.i.d. mini-batches (Fashion-MNIST, paper MLP, "
        f"{int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})",
        fontsize=9,
    )
    save(fig, out / "non_iid.png", df)


ORDER = 11
TABLE = Table(["variant", "dataset.classes_per_batch"], [TRAIN_LOSS, VAL])
CLAIMS = [
    Claim(
        "Batch Renorm beats BN when batches are not i.i.d.",
        "Ioffe 2017",
        "non_iid.png",
        MoreByStd(
            "val accuracy, 2-class batches:",
            side("Batch Renorm", variant="batch_renorm", dataset__classes_per_batch=2),
            side("BN", variant="bn", dataset__classes_per_batch=2),
        ),
    ),
]
