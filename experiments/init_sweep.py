"""Saito's weight-init experiment (init_sweep.png): a 4x4 grid of training-accuracy curves.

One panel per init std (logspace(0, -4, 16)), BN solid, no BN dashed, mean over 3 seeds with a
95% interval;
training accuracy in eval mode on the 1,000 training images, every epoch. From the init_sweep
experiment (its fast overlay evaluates every other epoch).
"""

import matplotlib.pyplot as plt

from bnlab.results.analysis import curves, runs_table
from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, Named
from bnlab.results.figures import band, save, seeds_text
from bnlab.results.tables import Column, Table, per_seed, with_variant
from bnlab.results.variants import label_and_colour


def draw(df, out):
    stds = sorted(df["model.init_std"].unique(), reverse=True)
    rows = (len(stds) + 3) // 4
    fig, axes = plt.subplots(
        rows,
        4,
        figsize=(13, 3 * rows),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    steps_per_epoch = 1000 // int(df["trainer.batch_size"].iloc[0])
    runs = runs_table(df)
    for ax, std in zip(axes.flat, stds):
        notes = []
        for kind, style in (("bn", "-"), ("none", "--")):
            sub = df[(df["model.init_std"] == std) & (df["norm.kind"] == kind)]
            label, colour = label_and_colour(kind)
            members = runs[(runs["model.init_std"] == std) & (runs["norm.kind"] == kind)]
            diverged = int((members["status"] == "diverged").sum())
            if diverged:
                notes.append((f"{label}: {diverged}/{len(members)} diverged", colour))
            healthy = sub[sub["status"] != "diverged"]
            if not healthy.empty:
                c = curves(healthy, "train", "accuracy")
                c["step"] = c["step"] / steps_per_epoch
                band(ax, c, label, colour, style)
        for i, (text, colour) in enumerate(notes):
            ax.text(
                0.97,
                0.05 + 0.1 * i,
                text,
                transform=ax.transAxes,
                ha="right",
                color=colour,
                fontsize=9,
            )
        ax.set_title(f"init std {std:.3g}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(stds) :]:
        ax.axis("off")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines()}
    axes[0][0].legend(
        [handles[k] for k in sorted(handles)], sorted(handles), fontsize=8, loc="upper left"
    )
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("training accuracy")
    fig.suptitle(
        "BN vs no BN over 16 weight-init scales (Saito ch. 6 on Fashion-MNIST: "
        f"5 x 100 ReLU, 1,000 images, SGD 0.01, {seeds_text(df)})"
    )
    save(fig, out / "init_sweep.png", df)


TRAINS = 0.5  # "trains at a scale": mean final train accuracy over seeds above this


def scales_that_train(df) -> tuple[str, str]:
    """How many initial weight scales reach TRAINS train accuracy, BN vs no BN (diverged seeds
    left out): confirmed if BN does at more of them."""
    table = per_seed(with_variant(df), "train", "accuracy")
    healthy = table[table.status != "diverged"]
    trained = healthy.groupby(["variant", "model.init_std"])["value"]
    good = (trained.mean() > TRAINS).groupby(level=0).sum()
    bn, none = good.get("bn", 0), good.get("none", 0)
    scales = table["model.init_std"].nunique()
    text = f"init scales (of {scales}) with train accuracy > {TRAINS}: BN {bn}, no BN {none}"
    return text, CONFIRMED if bn > none else CONTRADICTED


ORDER = 3
TABLE = Table(
    ["model.init_std", "variant"], [Column("train accuracy (eval mode)", "train", "accuracy")]
)
CLAIMS = [
    Claim(
        "BN trains at initial weight scales where the plain network does not",
        "Saito, Deep Learning from Scratch, ch. 6",
        "init_sweep.png",
        Named(
            scales_that_train,
            f"confirmed if BN reaches {TRAINS} train accuracy at more of the scales",
        ),
    ),
]
