"""BN at depth (depth.png): gradient explosion at initialization, and which networks train.

MLPs of width 100 and depth 2 to 64, sigmoid (top row) and ReLU (bottom row), without and with
BN, each without and with skip connections. (a) the gradient norm of every layer's weights at
initialization in the deepest network (layer 1 is the input layer), geometric mean over seeds,
with Yang et al.'s 1.21 per layer for ReLU + BN; (b) the per-layer growth factor fitted to the
hidden-to-hidden layers, against depth (mean and std over seeds); (c) the final validation
accuracy at the best learning rate of the grid, against depth (mean and std over seeds; the
best rate printed by each point); (d) the gradient norms' dynamic range (max / min over layers)
in the deepest network over the first steps, at each variant's best rate. From the depth
experiment (run first if missing).
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlab.analysis import runs_table
from bnlab.depth import (
    CELL,
    THEORY_RELU_BN,
    VARIANTS,
    best_rates,
    dynamic_range,
    geometric_mean,
    growth_at_init,
    layer_norms,
    with_variant,
)
from bnlab.figures import figure_script, log2_axis, save, seeds_text

FIRST_STEPS = 400  # panel (d)'s window


def draw(df, out):
    df = with_variant(df)
    deepest = int(df["model.depth"].max())
    best = best_rates(df)
    growth = growth_at_init(df).drop_duplicates(
        ["model.activation", "variant", "model.depth", "seed"]
    )
    spread = dynamic_range(df).merge(runs_table(df)[["run", "optimizer.lr", *CELL]])
    activations = [a for a in ("sigmoid", "relu") if a in set(df["model.activation"])]
    fig, axes = plt.subplots(
        len(activations),
        4,
        figsize=(18, 4.2 * len(activations)),
        squeeze=False,
        layout="constrained",
    )
    for row, activation in zip(axes, activations):
        here = df[df["model.activation"] == activation]
        for label, colour in VARIANTS.values():
            mine = here[here["variant"] == label]
            if mine.empty:
                continue
            at_init = layer_norms(mine[(mine["model.depth"] == deepest) & (mine["step"] == 0)])
            norms = at_init.groupby("layer")["value"].apply(geometric_mean)
            row[0].plot(norms.index, norms.to_numpy(), "o-", ms=2.5, color=colour, label=label)
            g = growth[(growth["model.activation"] == activation) & (growth["variant"] == label)]
            g = g.dropna(subset=["growth"]).groupby("model.depth")["growth"].agg(["mean", "std"])
            row[1].errorbar(g.index, g["mean"], g["std"], fmt="o-", color=colour, capsize=3)
            b = best[(best["model.activation"] == activation) & (best["variant"] == label)]
            row[2].errorbar(
                b["model.depth"],
                b["mean"],
                b["std"],
                fmt="o-",
                color=colour,
                capsize=3,
                label=label,
            )
            for _, cell in b.iterrows():
                row[2].annotate(
                    f"{cell['optimizer.lr']:g}",
                    (cell["model.depth"], cell["mean"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=6,
                    color=colour,
                )
            lr = b[b["model.depth"] == deepest]["optimizer.lr"]
            s = spread[
                (spread["model.activation"] == activation)
                & (spread["variant"] == label)
                & (spread["model.depth"] == deepest)
                & (spread["step"] <= FIRST_STEPS)
            ]
            if not lr.empty:
                s = s[np.isclose(s["optimizer.lr"], float(lr.iloc[0]))]
                s = s.groupby("step")["range"].apply(geometric_mean)
                row[3].plot(s.index, s.to_numpy(), "o-", ms=2.5, color=colour, label=label)
        if activation == "relu":
            bn = here[
                (here["variant"] == VARIANTS[("bn", False)][0]) & (here["model.depth"] == deepest)
            ]
            last = layer_norms(bn[bn["step"] == 0])
            last = last[last["layer"] == deepest]["value"]
            if not last.empty:
                layers = np.arange(2, deepest + 1)
                anchor = geometric_mean(last)
                row[0].plot(
                    layers,
                    anchor * THEORY_RELU_BN ** (deepest - layers),
                    "k:",
                    lw=1.2,
                    label=f"theory, ReLU + BN: x{THEORY_RELU_BN:.2f} per layer",
                )
            row[1].axhline(THEORY_RELU_BN, color="k", ls=":", lw=1.2, label="theory, ReLU + BN")
        row[1].axhline(1.0, color="0.5", lw=0.8)
        row[0].set_yscale("log")
        row[0].set_xlabel(f"layer (1: input layer; depth {deepest})")
        row[0].set_ylabel(f"{activation}: ||dL/dW|| at init")
        row[1].set_ylabel("growth per layer (last -> first)")
        row[1].set_xlabel("depth")
        row[2].set_ylabel("final val accuracy, best rate")
        row[2].set_ylim(0, 1)
        row[2].axhline(0.1, color="0.5", lw=0.8)
        row[2].set_xlabel("depth")
        row[3].set_yscale("log")
        row[3].set_xlabel(f"training step (depth {deepest}, best rate)")
        row[3].set_ylabel("max / min layer gradient norm")
        for ax in row[1:3]:
            log2_axis(ax, sorted(df["model.depth"].astype(int).unique()))
        for ax in row:
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
        if row[1].get_legend_handles_labels()[0]:
            row[1].legend(fontsize=7)
    for ax, letter in zip(axes[0], "abcd"):
        ax.set_title(
            {
                "a": "(a) gradient norm per layer at init",
                "b": "(b) fitted growth factor at init",
                "c": "(c) trained? final accuracy",
                "d": "(d) dynamic range over the first steps",
            }[letter]
        )
    rates = ", ".join(f"{lr:g}" for lr in sorted(df["optimizer.lr"].unique()))
    fig.suptitle(
        f"BN at depth (Fashion-MNIST, width 100, batch {int(df['trainer.batch_size'].iloc[0])}, "
        f"SGD at {rates}, {int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "depth.png", df)


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "depth", draw)


if __name__ == "__main__":
    raise SystemExit(main())
