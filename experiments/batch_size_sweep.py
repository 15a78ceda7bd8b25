"""BN at tiny batches (batch_size_sweep.png): final validation accuracy against batch size.

No BN; BN evaluated with its running (EMA) statistics; BN evaluated with each batch's own
statistics (batches of the training batch size, as in training): the last two differ by the
train/test mismatch. Same number of epochs at every batch size; 3 seeds, 95% intervals.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.results.analysis import final_table
from bnlab.results.claims import CONFIRMED, NOT_REPRODUCED, Claim, Named, final, pm
from bnlab.results.figures import final_lines, log2_axis, save, seeds_text
from bnlab.results.tables import VAL, VAL_TRAINMODE, Table
from bnlab.results.variants import label_and_colour


def draw(df, out):
    evalmode = final_table(df, "val", "accuracy")
    evalmode["variant"] = evalmode["norm.kind"].map({"none": "none", "bn": "bn_eval"})
    trainmode = final_table(df[df["norm.kind"] == "bn"], "val", "accuracy_trainmode")
    trainmode["variant"] = "bn_train"
    table = pd.concat([evalmode, trainmode], ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    final_lines(
        ax,
        table,
        "trainer.batch_size",
        "variant",
        {
            "none": label_and_colour("none"),
            "bn_eval": ("BN, eval mode (running statistics)", "tab:red"),
            "bn_train": ("BN, batch statistics at test time", "tab:orange"),
        },
    )
    log2_axis(ax, table["trainer.batch_size"].unique())
    ax.set_xlabel("batch size")
    ax.set_ylabel("final validation accuracy")
    ax.legend(fontsize=8)
    epochs = df["trainer.epochs"].iloc[0]
    budget = (
        f"{epochs:g} epochs" if pd.notna(epochs) else f"{int(df['trainer.steps'].max()):,} steps"
    )
    ax.set_title(
        f"BN and the batch size (Fashion-MNIST, paper MLP, {budget}, "
        f"lr {df['optimizer.lr'].iloc[0]:g}, {seeds_text(df)})",
        fontsize=9,
    )
    save(fig, out / "batch_size_sweep.png", df)


TINY, SMALL = 2, 4  # the batch sizes compared
BREAKS_BY = 0.1  # "breaks": mean final val accuracy at TINY this far below SMALL's


def breaks_at_tiny_batch(df) -> tuple[str, str]:
    """BN's final val accuracy at batch TINY vs SMALL: confirmed if TINY is more than BREAKS_BY
    below, else not reproduced."""
    tiny, small = (final(df, variant="bn", trainer__batch_size=b) for b in (TINY, SMALL))
    text = f"BN val accuracy at batch {TINY}: {pm(tiny)}; at batch {SMALL}: {pm(small)}"
    return text, CONFIRMED if small[0] - tiny[0] > BREAKS_BY else NOT_REPRODUCED


ORDER = 4
TABLE = Table(["trainer.batch_size", "variant"], [VAL, VAL_TRAINMODE])
CLAIMS = [
    Claim(
        "BN breaks at very small batches (batch 2)",
        "Ioffe 2017; Wu & He 2018",
        "batch_size_sweep.png",
        Named(
            breaks_at_tiny_batch,
            f"confirmed if batch {TINY} is more than {BREAKS_BY} below batch {SMALL}",
        ),
    ),
]
