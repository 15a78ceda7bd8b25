"""BN across data-parallel workers (sync_bn.png): final validation accuracy (eval mode) and
training loss against the number of workers a global batch of 8 is split over (so the
per-worker batch), BN per worker against BN synchronized over the workers (mean over seeds
with a 95% interval). From the sync_bn experiment (:mod:`bnlab.training.parallel`).
"""

from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.figures import accuracy_and_loss_against, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table

WORKERS, SYNC = "trainer.data_parallel", "norm.sync"
STYLES = {"False": ("BN per worker", "tab:orange"), "True": ("BN synchronized", "tab:red")}


def draw(df, out):
    batch = int(df["trainer.batch_size"].iloc[0])
    fig, axes = accuracy_and_loss_against(
        df, WORKERS, SYNC, STYLES, "workers (examples per worker)"
    )
    for ax in axes:
        workers = sorted(df[WORKERS].astype(int).unique())
        ax.set_xticks(workers, [f"{w}\n({batch // w} each)" for w in workers])
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
