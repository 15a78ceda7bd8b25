"""Why gamma and beta (whitening_vs_bn.png): no normalization vs plain standardization (BN
without gamma/beta) vs BN, training loss and validation accuracy over training, sigmoid MLP.
"""

from bnlab.figures import figure_script, loss_and_accuracy, seeds_text


def draw(df, out):
    variants = [
        ("no normalization", "tab:blue", "-", df[df["norm.kind"] == "none"]),
        (
            "standardize only (affine=false)",
            "tab:green",
            "--",
            df[(df["norm.kind"] == "bn") & ~df["norm.affine"].astype(bool)],
        ),
        (
            "BN (with gamma, beta)",
            "tab:red",
            "-",
            df[(df["norm.kind"] == "bn") & df["norm.affine"].astype(bool)],
        ),
    ]
    loss_and_accuracy(
        variants,
        f"Standardizing vs BN (Fashion-MNIST, paper MLP, sigmoid, lr "
        f"{df['optimizer.lr'].iloc[0]:g}, {seeds_text(df)})",
        out / "whitening_vs_bn.png",
    )


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "whitening_vs_bn", draw)


if __name__ == "__main__":
    raise SystemExit(main())
