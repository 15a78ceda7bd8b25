"""BN as a regularizer (regularization.png): final validation loss minus training loss (both
eval mode) and final validation accuracy, for no BN and BN, each without and with dropout 0.3
and weight decay 5e-4; 5,000 training images; 3 seeds, per-seed points and means.
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results.analysis import final_table, mean_interval
from bnlab.results.claims import Claim, MoreByStd, Named, compare, pm
from bnlab.results.figures import save, seeds_text
from bnlab.results.tables import VAL, VAL_LOSS, Column, Table, per_seed, select, with_variant
from bnlab.results.variants import label_and_colour


def draw(df, out):
    val = final_table(df, "val", "loss").set_index("run")
    train = final_table(df, "train", "loss_evalmode").set_index("run")
    acc = final_table(df, "val", "accuracy").set_index("run")
    val["gap"] = val["value"] - train["value"]
    val["accuracy"] = acc["value"]
    val = val[val["status"] != "diverged"]
    cells = [(d, w) for d in (0.0, 0.3) for w in (0.0, 0.0005)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), layout="constrained")
    for ax, column, ylabel in (
        (axes[0], "gap", "validation loss - training loss"),
        (axes[1], "accuracy", "final validation accuracy"),
    ):
        for k, kind in enumerate(("none", "bn")):
            label, colour = label_and_colour(kind)
            for c, (dropout, wd) in enumerate(cells):
                x = c + 0.2 * (2 * k - 1)
                rows = val[
                    (val["norm.kind"] == kind)
                    & (val["model.dropout"] == dropout)
                    & (val["optimizer.weight_decay"] == wd)
                ]
                mean, half, _ = mean_interval(rows[column])
                ax.bar(
                    x, mean, width=0.35, color=colour, alpha=0.5, label=label if c == 0 else None
                )
                ax.errorbar(
                    x, mean, yerr=None if np.isnan(half) else half, color="black", capsize=3
                )
                ax.scatter(np.full(len(rows), x), rows[column], color=colour, s=12, zorder=3)
        ax.set_xticks(
            range(len(cells)), [f"dropout {d:g}\nweight decay {w:g}" for d, w in cells], fontsize=8
        )
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend()
    axes[1].set_ylim(max(0.0, val["accuracy"].min() - 0.03), val["accuracy"].max() + 0.01)
    fig.suptitle(
        f"BN, dropout and weight decay (5,000 Fashion-MNIST images, paper MLP, "
        f"{int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "regularization.png", df)


def generalization_gap(df) -> tuple[str, str]:
    """Final val loss minus train loss (eval mode) per run, without dropout or weight decay,
    BN vs no BN: the 1-std rule, a smaller gap confirming."""
    gaps = {}
    for v in ("bn", "none"):
        where = dict(variant=v, model__dropout=0.0, optimizer__weight_decay=0.0)
        val = select(per_seed(with_variant(df), "val", "loss"), **where)
        train = select(per_seed(with_variant(df), "train", "loss_evalmode"), **where)
        gap = val.set_index("run")["value"] - train.set_index("run")["value"]
        gaps[v] = (gap.mean(), gap.std(ddof=1))
    text = f"val loss - train loss, no dropout: BN {pm(gaps['bn'])}, no BN {pm(gaps['none'])}"
    return text, compare(gaps["none"], gaps["bn"])


ORDER = 7
TABLE = Table(
    ["variant", "model.dropout", "optimizer.weight_decay"],
    [Column("train loss (eval mode)", "train", "loss_evalmode"), VAL_LOSS, VAL],
)
CLAIMS = [
    Claim(
        "BN regularizes (a smaller gap between validation and training loss)",
        "Ioffe & Szegedy 2015; the blog post",
        "regularization.png",
        Named(generalization_gap, MoreByStd.text),
    ),
]
