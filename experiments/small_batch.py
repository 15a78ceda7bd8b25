"""Normalizations at small batches (small_batch.png): final validation accuracy against batch
size, one line per normalization (none, BN, Batch Renorm, LayerNorm, GroupNorm), each for the
same number of epochs; mean over 3 seeds with a 95% interval. From the small_batch experiment.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.results.analysis import final_table
from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import NORMS, final_lines, log2_axis, save, seeds_text
from bnlab.results.tables import VAL, Table, per_seed, select, with_variant


def draw(df, out):
    table = final_table(df, "val", "accuracy")
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    final_lines(ax, table, "trainer.batch_size", "norm.kind", NORMS)
    log2_axis(ax, table["trainer.batch_size"].unique())
    ax.set_xlabel("batch size")
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.legend(fontsize=8)
    epochs = df["trainer.epochs"].iloc[0]
    budget = f"{epochs:g} epoch(s)" if pd.notna(epochs) else "fixed steps"
    ax.set_title(
        f"Where BN breaks, then what? (Fashion-MNIST, paper MLP, {budget}, {seeds_text(df)})",
        fontsize=9,
    )
    save(fig, out / "small_batch.png", df)


class GroupNormAtTinyBatch(MoreByStd):
    """The 1-std rule at batch 2, and GroupNorm's range over the batch sizes in the text."""

    def measure(self, df) -> tuple[str, str]:
        measured, verdict = super().measure(df)
        by_size = select(per_seed(with_variant(df), "val", "accuracy"), variant="group")
        gn = by_size.groupby("trainer.batch_size")["value"].mean()
        return f"{measured}; GroupNorm's range over batch sizes {gn.min():.3f}-{gn.max():.3f}", (
            verdict
        )


ORDER = 10
TABLE = Table(["trainer.batch_size", "variant"], [VAL])
CLAIMS = [
    Claim(
        "GroupNorm beats BN at batch 2",
        "Wu & He 2018",
        "small_batch.png",
        GroupNormAtTinyBatch(
            "val accuracy at batch 2:",
            side("GroupNorm", variant="group", trainer__batch_size=2),
            side("BN", variant="bn", trainer__batch_size=2),
        ),
    ),
]
