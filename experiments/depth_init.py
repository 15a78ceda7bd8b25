"""Gradient explosion at initialization against the batch size (depth_init.png).

A plain ReLU MLP of depth 32 and width 256 (He init), with and without BN, at batch sizes 2 to
1024. Left: the per-layer growth factor of the gradient norm at initialization, fitted to the
hidden-to-hidden layers (mean and std over seeds), against the batch size, with Yang et al.'s
wide, large-batch value for ReLU + BN, sqrt(pi / (pi - 1)) = 1.21. Right: the gradient norm of
every layer at three batch sizes (geometric mean over seeds). From the depth_init experiment
(run first if missing).
"""

import matplotlib.pyplot as plt

from bnlab.depth import THEORY_RELU_BN, geometric_mean, growth_at_init, layer_norms
from bnlab.figures import NORMS, figure_script, log2_axis, save, seeds_text


def draw(df, out):
    growth = growth_at_init(df)
    sizes = sorted(df["trainer.batch_size"].astype(int).unique())
    shown = sorted({sizes[0], sizes[len(sizes) // 2], sizes[-1]})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    for kind in ("none", "bn"):
        label, colour = NORMS[kind]
        g = growth[growth["norm.kind"] == kind].groupby("trainer.batch_size")["growth"]
        g = g.agg(["mean", "std"])
        ax.errorbar(g.index, g["mean"], g["std"], fmt="o-", color=colour, capsize=3, label=label)
        mine = df[(df["norm.kind"] == kind) & (df["step"] == 0)]
        for size, style in zip(shown, (":", "--", "-")):
            norms = layer_norms(mine[mine["trainer.batch_size"] == size])
            norms = norms.groupby("layer")["value"].apply(geometric_mean)
            ax2.plot(
                norms.index, norms.to_numpy(), style, color=colour, label=f"{label}, batch {size}"
            )
    ax.axhline(THEORY_RELU_BN, color="k", ls=":", lw=1.2, label="theory, ReLU + BN (large batch)")
    ax.axhline(1.0, color="0.5", lw=0.8)
    log2_axis(ax, sizes)
    ax.set_xlabel("batch size")
    ax.set_ylabel("gradient growth per layer at init (last -> first)")
    ax.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("layer (1: input layer)")
    ax2.set_ylabel("||dL/dW|| at init")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    depth, width = int(df["model.depth"].iloc[0]), int(df["model.width"].iloc[0])
    fig.suptitle(
        f"Gradient explosion at init vs batch size (ReLU MLP, depth {depth}, width {width}, "
        f"He init, Fashion-MNIST, {seeds_text(df)})"
    )
    save(fig, out / "depth_init.png", df)


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "depth_init", draw)


if __name__ == "__main__":
    raise SystemExit(main())
