"""The normalization batch is not the SGD batch (ghost_batch.png): final validation accuracy and
training loss against the number of examples BN normalizes over (norm.ghost_batch), the SGD
batch fixed; mean over seeds with a 95% interval. From the ghost_batch experiment.
"""

from bnlab.results.analysis import final_table, summary
from bnlab.results.claims import CONFIRMED, CONTRADICTED, NOT_REPRODUCED, Claim, Named, compare, pm
from bnlab.results.figures import accuracy_and_loss_against, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table, select
from bnlab.results.variants import label_and_colour

KEY = "norm.ghost_batch"


def draw(df, out):
    fig, _ = accuracy_and_loss_against(
        df,
        KEY,
        "norm.kind",
        {"bn": label_and_colour("bn")},
        "normalization batch (examples per ghost batch)",
    )
    sgd = int(df["trainer.batch_size"].iloc[0])
    fig.suptitle(
        f"Ghost batch norm: BN over sub-batches of an SGD batch of {sgd} (Fashion-MNIST, paper "
        f"MLP, {int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "ghost_batch.png", df)


def intermediate_is_best(df) -> tuple[str, str]:
    """The best normalization batch by mean final val accuracy, against the whole SGD batch:
    confirmed if it lies strictly between the smallest and the whole batch and beats the whole
    batch by more than 1 std over seeds; contradicted if the whole batch beats every smaller
    one by more than 1 std; else not reproduced."""
    table = final_table(df, "val", "accuracy")
    sizes = sorted(table[KEY].astype(int).unique())
    stats = {k: summary(select(table, **{KEY.replace(".", "__"): k}))[:2] for k in sizes}
    best = max(sizes, key=lambda k: stats[k][0])
    whole = int(table["trainer.batch_size"].iloc[0])  # the SGD batch: plain BN
    if whole not in stats:
        return f"no runs at the whole SGD batch ({whole})", "-"
    text = f"val accuracy by normalization batch (SGD batch {whole}): " + ", ".join(
        f"{k}: {stats[k][0]:.3f}" for k in sizes
    )
    text += f"; best {best} ({pm(stats[best])}) vs {whole} ({pm(stats[whole])})"
    if best == whole:
        beaten = all(compare(stats[whole], stats[k]) == CONFIRMED for k in sizes if k != whole)
        return text, CONTRADICTED if beaten else NOT_REPRODUCED
    if best == sizes[0]:
        return text, NOT_REPRODUCED
    return text, CONFIRMED if compare(stats[best], stats[whole]) == CONFIRMED else NOT_REPRODUCED


ORDER = 10.5  # beside the other batch-size claims
TABLE = Table([KEY], [TRAIN_LOSS, VAL])
CLAIMS = [
    Claim(
        "BN is best over a normalization batch smaller than the SGD batch (ghost batch norm)",
        "Hoffer et al. 2017; Wu & Johnson 2021",
        "ghost_batch.png",
        Named(
            intermediate_is_best,
            "confirmed if the best normalization batch lies between the smallest and the whole "
            "SGD batch and beats the whole batch by more than 1 std over seeds; contradicted if "
            "the whole batch beats every smaller one by more than 1 std",
        ),
    ),
]
