"""The CNN with and without per-channel BN (cnn_bn_vs_nobn.png): training loss and validation
accuracy over training, mean over 3 seeds with a 95% interval.
"""

import matplotlib.pyplot as plt

from bnlab.figures import figure_script, label_and_colour, save, variant_curves

FAST = ["trainer.steps=600", "trainer.eval_every=100"]


def draw(df, out):
    variants = [(*label_and_colour(kind), "-", df[df["norm.kind"] == kind])
                for kind in ("none", "bn")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    variant_curves(ax1, variants, "train", "loss")
    ax1.set_yscale("log")
    ax1.set_ylabel("training loss (train mode)")
    ax1.legend(fontsize=8)
    variant_curves(ax2, variants, "val", "accuracy")
    ax2.set_ylabel("validation accuracy (eval mode)")
    ax2.set_ylim(0.6, 0.95)
    channels = df["model.channels"].iloc[0]
    fig.suptitle(f"CNN {channels} channels, per-channel BN vs none ({df['dataset.name'].iloc[0]}, "
                 f"lr {df['optimizer.lr'].iloc[0]:g}, {df['seed'].nunique()} seeds)")
    save(fig, out / "cnn_bn_vs_nobn.png")


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "cnn_bn_vs_nobn", FAST, draw)


if __name__ == "__main__":
    raise SystemExit(main())
