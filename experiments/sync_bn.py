"""BN across data-parallel workers (sync_bn.png): final validation accuracy (eval mode) and
training loss against the number of workers a global batch of 8 is split over (so the
per-worker batch), BN per worker against BN synchronized over the workers (mean over seeds
with a 95% interval). From the sync_bn experiment (:mod:`bnlab.training.parallel`).
"""

import matplotlib.pyplot as plt

from bnlab.results.analysis import final_table
from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import final_lines, log2_axis, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table

WORKERS, SYNC = "trainer.data_parallel", "norm.sync"
STYLES = {"False": ("BN per worker", "tab:orange"), "True": ("BN synchronized", "tab:red")}


def draw(df, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    batch = int(df["trainer.batch_size"].iloc[0])
    for ax, (split, metric, ylabel) in zip(
        axes,
        [
            ("val", "accuracy", "final validation accuracy (eval mode)"),
            ("train", "loss", "training loss, last window (train mode)"),
        ],
    ):
        table = final_table(df, split, metric)
        table[SYNC] = table[SYNC].astype(bool).astype(str)
        final_lines(ax, table, WORKERS, SYNC, STYLES)
        workers = sorted(table[WORKERS].astype(int).unique())
        log2_axis(ax, workers)
        ax.set_xticks(workers, [f"{w}\n({batch // w} each)" for w in workers])
        ax.set_xlabel("workers (examples per worker)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"BN per worker or synchronized, a global batch of {batch} over data-parallel workers "
        f"(Fashion-MNIST, paper MLP, {int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "sync_bn.png", df)


ORDER = 10.6  # beside ghost_batch
TABLE = Table([WORKERS, SYNC], [TRAIN_LOSS, VAL])
CLAIMS = [
    Claim(
        "At small per-worker batches, BN synchronized over the workers beats BN per worker",
        "Wu & He 2018; Peng et al. 2018",
        "sync_bn.png",
        MoreByStd(
            "val accuracy, 4 workers of 2 examples:",
            side("synchronized", trainer__data_parallel=4, norm__sync=True),
            side("per worker", trainer__data_parallel=4, norm__sync=False),
        ),
    ),
]
