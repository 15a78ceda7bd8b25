"""BN before or after the nonlinearity (placement.png): validation accuracy over training.

One panel per activation (sigmoid, ReLU); BN before (the paper) solid, after dashed; mean over
3 seeds with a 95% interval.
"""

import matplotlib.pyplot as plt

from bnlab.results.figures import save, seeds_text, variant_curves
from bnlab.results.tables import TRAIN_LOSS, VAL, Table


def draw(df, out):
    acts = [a for a in ("sigmoid", "relu") if a in set(df["model.activation"])]
    fig, axes = plt.subplots(
        1,
        len(acts),
        figsize=(5.5 * len(acts), 4.2),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, act in zip(axes[0], acts):
        sub = df[df["model.activation"] == act]
        variant_curves(
            ax,
            [
                (
                    "BN before the nonlinearity",
                    "tab:red",
                    "-",
                    sub[sub["norm.placement"] == "before"],
                ),
                (
                    "BN after the nonlinearity",
                    "tab:purple",
                    "--",
                    sub[sub["norm.placement"] == "after"],
                ),
            ],
            "val",
            "accuracy",
        )
        ax.set_title(act)
        ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("validation accuracy (eval mode)")
    axes[0][0].set_ylim(0.6, 0.92)
    fig.suptitle(
        f"Where BN goes (Fashion-MNIST, 3 x 100 MLP, lr {df['optimizer.lr'].iloc[0]:g}, "
        f"{seeds_text(df)})"
    )
    save(fig, out / "placement.png", df)


TABLE = Table(["model.activation", "norm.placement"], [TRAIN_LOSS, VAL])
