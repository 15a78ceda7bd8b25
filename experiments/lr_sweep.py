"""Higher learning rates with BN (lr_sweep.png): final validation accuracy against the lr.

BN vs no BN, plain SGD at 0.1 (the base) times 1, 5, 30 (the paper's BN-x5, BN-x30), 100 and
300; mean over 3 seeds with a 95% interval, diverged seeds marked. Right: validation accuracy
over training at 100x the base, where the two part ways. From the lr_sweep experiment (run
first if missing).
"""

import matplotlib.pyplot as plt

from bnlab.analysis import curves, final_table
from bnlab.figures import band, figure_script, final_lines, label_and_colour, save, seeds_text

BASE_LR = 0.1


def draw(df, out):
    table = final_table(df, "val", "accuracy")
    table["multiplier"] = table["optimizer.lr"] / BASE_LR
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    final_lines(
        ax, table, "multiplier", "norm.kind", {k: label_and_colour(k) for k in ("none", "bn")}
    )
    ax.set_xscale("log")
    ticks = sorted(table["multiplier"].unique())
    ax.set_xticks(ticks, [f"x{m:g}" for m in ticks])
    ax.set_xlabel(f"learning rate, as a multiple of {BASE_LR:g}")
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.set_ylim(0, 1)
    ax.set_title("final accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    x100 = df[df["optimizer.lr"].round(6) == round(100 * BASE_LR, 6)]
    for kind in ("none", "bn"):
        sub = x100[x100["norm.kind"] == kind]
        if not sub.empty:
            label, colour = label_and_colour(kind)
            band(ax2, curves(sub, "val", "accuracy"), label, colour)
    ax2.set_xlabel("training step")
    ax2.set_ylim(0, 1)
    ax2.set_title(f"validation accuracy at x100 (lr {100 * BASE_LR:g}), mean and 95% interval")
    ax2.grid(alpha=0.3)
    if ax2.get_lines():
        ax2.legend(fontsize=8)
    steps = int(df["trainer.steps"].max())
    fig.suptitle(
        f"BN and the learning rate (Fashion-MNIST, paper MLP, SGD, {steps:,} steps, "
        f"{seeds_text(df)})"
    )
    save(fig, out / "lr_sweep.png", df)


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "lr_sweep", draw)


if __name__ == "__main__":
    raise SystemExit(main())
