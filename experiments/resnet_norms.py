"""BN, GroupNorm and LayerNorm in a ResNet at batch 32 and batch 2 (resnet_norms.png): final
validation accuracy (eval mode) and training loss against the batch size, the same number of
epochs at each (mean over seeds, the band from the lowest to the highest). After Wu & He 2018,
Figure 1.
"""

from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import accuracy_and_loss_against, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table, with_variant
from bnlab.results.variants import styles

NORMS = ("bn", "group", "layer")
BATCH = "trainer.batch_size"


def draw(df, out):
    xlabel = "batch size (the same epochs at each)"
    fig, _ = accuracy_and_loss_against(
        with_variant(df), BATCH, "variant", styles(NORMS), xlabel, spread="range"
    )
    m = df.drop_duplicates("run").iloc[0]
    epochs = m.get("trainer.epochs")
    budget = (
        f"{float(epochs):g} epochs"
        if epochs == epochs and epochs is not None
        else (f"{int(m['trainer.steps']):,} steps")
    )
    fig.suptitle(
        f"Normalizations in ResNet-{int(m['model.depth'])} ({m['model.channels']} channels) "
        f"at batch 32 and 2 ({m['dataset.name']}, SGD lr {m['optimizer.lr']:g}, {budget}, "
        f"{seeds_text(df)})"
    )
    save(fig, out / "resnet_norms.png", df)


ORDER = 12.2  # beside the small CNN's claims
TABLE = Table([BATCH, "variant"], [TRAIN_LOSS, VAL])
BN = side("BN", variant="bn", trainer__batch_size=32)
CLAIMS = [
    Claim(
        "LayerNorm loses to BN on a ResNet at an ordinary batch size (32)",
        "Wu & He 2018",
        "resnet_norms.png",
        MoreByStd(
            "ResNet val accuracy at batch 32:",
            BN,
            side("LayerNorm", variant="layer", trainer__batch_size=32),
        ),
    ),
    Claim(
        "At batch 2, GroupNorm beats BN in a ResNet",
        "Wu & He 2018",
        "resnet_norms.png",
        MoreByStd(
            "ResNet val accuracy at batch 2:",
            side("GroupNorm", variant="group", trainer__batch_size=2),
            side("BN", variant="bn", trainer__batch_size=2),
        ),
    ),
]
