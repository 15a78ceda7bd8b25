"""Which statistics at test time (inference_stats.png): final validation accuracy against the
training batch size with EMA statistics, the paper's population statistics (Algorithm 2), and
each test batch's own statistics (batches of the training batch size). 3 seeds, 95% intervals.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.analysis import final_table
from bnlab.figures import figure_script, final_lines, log2_axis, save, seeds_text


def draw(df, out):
    fixed = final_table(df, "val", "accuracy")
    fixed["variant"] = fixed["norm.stats"]
    batch = final_table(df[df["norm.stats"] == "ema"], "val", "accuracy_trainmode")
    batch["variant"] = "batch"
    table = pd.concat([fixed, batch], ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    final_lines(
        ax,
        table,
        "trainer.batch_size",
        "variant",
        {
            "ema": ("EMA running statistics (PyTorch)", "tab:red"),
            "population": ("population statistics (Algorithm 2)", "tab:green"),
            "batch": ("each test batch's own statistics", "tab:orange"),
        },
    )
    log2_axis(ax, table["trainer.batch_size"].unique())
    ax.set_xlabel("batch size (training, and test batches for batch statistics)")
    ax.set_ylabel("final validation accuracy")
    ax.legend(fontsize=8)
    ax.set_title(
        f"BN's inference statistics (Fashion-MNIST, paper MLP, "
        f"{int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})",
        fontsize=9,
    )
    save(fig, out / "inference_stats.png", df)


def main(argv=None) -> int:
    return figure_script(argv, __doc__.split("\n")[0], "inference_stats", draw)


if __name__ == "__main__":
    raise SystemExit(main())
