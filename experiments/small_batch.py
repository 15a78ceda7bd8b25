"""Normalizations at small batches (small_batch.png): final validation accuracy against batch
size, one line per normalization (none, BN, Batch Renorm, LayerNorm, GroupNorm), each for the
same number of epochs; mean over 3 seeds with a 95% interval. From the small_batch experiment.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.analysis import final_table
from bnlab.figures import NORMS, figure_script, final_lines, log2_axis, save, seeds_text


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


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "small_batch", draw)


if __name__ == "__main__":
    raise SystemExit(main())
