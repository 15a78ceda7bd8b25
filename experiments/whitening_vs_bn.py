"""Why gamma and beta (whitening_vs_bn.png): no normalization vs plain standardization (BN
without gamma/beta) vs BN, training loss and validation accuracy over training, sigmoid MLP.
"""

import matplotlib.pyplot as plt

from bnlab.figures import figure_script, save, variant_curves

FAST = ["trainer.steps=2000"]


def draw(df, out):
    variants = [
        ("no normalization", "tab:blue", "-", df[df["norm.kind"] == "none"]),
        ("standardize only (affine=false)", "tab:green", "--",
         df[(df["norm.kind"] == "bn") & (df["norm.affine"] == False)]),  # noqa: E712
        ("BN (with gamma, beta)", "tab:red", "-",
         df[(df["norm.kind"] == "bn") & (df["norm.affine"] == True)])]  # noqa: E712
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    variant_curves(ax1, variants, "train", "loss")
    ax1.set_yscale("log")
    ax1.set_ylabel("training loss (train mode)")
    ax1.legend(fontsize=8)
    variant_curves(ax2, variants, "val", "accuracy")
    ax2.set_ylabel("validation accuracy (eval mode)")
    ax2.set_ylim(0.6, 0.92)
    fig.suptitle(f"Standardizing vs BN (Fashion-MNIST, paper MLP, sigmoid, lr "
                 f"{df['optimizer.lr'].iloc[0]:g}, {df['seed'].nunique()} seeds)")
    save(fig, out / "whitening_vs_bn.png")


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "whitening_vs_bn", FAST, draw)


if __name__ == "__main__":
    raise SystemExit(main())
