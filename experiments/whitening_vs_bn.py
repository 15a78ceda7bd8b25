"""Why gamma and beta (whitening_vs_bn.png): no normalization vs plain standardization (BN
without gamma/beta) vs BN, training loss and validation accuracy over training, sigmoid MLP.
"""

from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import loss_and_accuracy, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table


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


ORDER = 8
TABLE = Table(["variant"], [TRAIN_LOSS, VAL])
CLAIMS = [
    Claim(
        "gamma and beta make BN stronger than plain standardization",
        "the blog post",
        "whitening_vs_bn.png",
        MoreByStd(
            "val accuracy",
            side("BN", variant="bn"),
            side("standardize only", variant="bn (no gamma/beta)"),
        ),
    ),
]
