"""The CNN with per-channel BN, LayerNorm, GroupNorm or no normalization (cnn_bn_vs_nobn.png):
training loss and validation accuracy over training, mean over 3 seeds with a 95% interval.
"""

from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import NORMS, loss_and_accuracy, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table


def draw(df, out):
    variants = [
        (*NORMS[kind], "-", df[df["norm.kind"] == kind])
        for kind in NORMS
        if kind in set(df["norm.kind"])
    ]
    channels = df["model.channels"].iloc[0]
    loss_and_accuracy(
        variants,
        f"CNN {channels} channels, normalizations "
        f"({df['dataset.name'].iloc[0]}, lr {df['optimizer.lr'].iloc[0]:g}, "
        f"{seeds_text(df)})",
        out / "cnn_bn_vs_nobn.png",
        accuracy_ylim=(0.6, 0.95),
    )


ORDER = 12
TABLE = Table(["variant"], [TRAIN_LOSS, VAL])
BN = side("BN", variant="bn")
CLAIMS = [
    Claim(
        "LayerNorm loses to BN on a CNN at an ordinary batch size",
        "Wu & He 2018",
        "cnn_bn_vs_nobn.png",
        MoreByStd("CNN val accuracy at batch 60:", BN, side("LayerNorm", variant="layer")),
    ),
    Claim(
        "Per-channel BN helps a CNN",
        "Ioffe & Szegedy 2015; the blog post",
        "cnn_bn_vs_nobn.png",
        MoreByStd("val accuracy", BN, side("no BN", variant="none")),
    ),
]
