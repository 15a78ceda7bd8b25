"""BN at tiny batches (batch_size_sweep.png): final validation accuracy against batch size.

No BN; BN evaluated with its running (EMA) statistics; BN evaluated with each batch's own
statistics (batches of the training batch size, as in training): the last two differ by the
train/test mismatch. Same number of epochs at every batch size; 3 seeds, 95% intervals.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.analysis import final_table
from bnlab.figures import figure_script, final_lines, log2_axis, save, seeds_text


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
            "none": ("No BN", "tab:blue"),
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


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "batch_size_sweep", draw)


if __name__ == "__main__":
    raise SystemExit(main())
