"""Which statistics at test time (inference_stats.png): final validation accuracy against the
training batch size with EMA statistics, the paper's population statistics (Algorithm 2), and
each test batch's own statistics (batches of the training batch size). 3 seeds, 95% intervals.
"""

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.results.analysis import final_table
from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, Named, final
from bnlab.results.figures import final_lines, log2_axis, save, seeds_text
from bnlab.results.tables import VAL, VAL_TRAINMODE, Table


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


def population_serves(df) -> tuple[str, str]:
    """Population statistics vs the EMA, per batch size: contradicted if population's mean
    final val accuracy is below the EMA's by more than the larger std over seeds at one."""
    rows, worse = [], False
    for batch in sorted(df["trainer.batch_size"].unique()):
        ema, pop = (
            final(df, norm__stats=s, trainer__batch_size=batch) for s in ("ema", "population")
        )
        rows.append(f"batch {batch}: {pop[0]:.3f} vs {ema[0]:.3f}")
        worse |= pop[0] < ema[0] - max(ema[1], pop[1])
    text = "population vs EMA val accuracy, " + "; ".join(rows)
    return text, CONTRADICTED if worse else CONFIRMED


ORDER = 5
TABLE = Table(["trainer.batch_size", "norm.stats"], [VAL, VAL_TRAINMODE])
CLAIMS = [
    Claim(
        "Population statistics (Algorithm 2) serve inference at least as well as the EMA",
        "Ioffe & Szegedy 2015",
        "inference_stats.png",
        Named(
            population_serves,
            "contradicted if population is more than 1 std below EMA at a batch size",
        ),
    ),
]
