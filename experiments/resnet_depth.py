"""Depth in ResNets with BN, without normalization, and with SkipInit (resnet_depth.png): left,
final validation accuracy against the depth (mean over seeds and the band from the lowest to
the highest, diverged seeds marked); right, validation accuracy over training at the deepest
depth.
"""

import matplotlib.pyplot as plt

from bnlab.results import rates
from bnlab.results.analysis import final_table, summary
from bnlab.results.claims import (
    CONFIRMED,
    CONTRADICTED,
    NOT_REPRODUCED,
    Claim,
    MoreByStd,
    Named,
    NotWorseBy,
    number,
    side,
)
from bnlab.results.figures import band, final_lines, save, seed_range, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table, cell, per_seed, select, with_variant
from bnlab.results.variants import styles

VARIANTS = ("none", "bn", "skipinit")
DEPTH = "model.depth"
DEEP, SHALLOW = 56, 8  # the claims' depths (ResNet-56 and ResNet-8)
SKIPINIT_WITHIN = 0.02


def draw(df, out):
    df = with_variant(df)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    table = with_variant(final_table(df, "val", "accuracy"))
    final_lines(ax, table, DEPTH, "variant", styles(VARIANTS), spread="range")
    depths = sorted(table[DEPTH].astype(int).unique())
    ax.set_xticks(depths, [f"ResNet-{d}" for d in depths])
    ax.set_xlabel("depth (layers with weights, 6n+2)")
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    deepest = depths[-1]
    for name, (lab, colour) in styles(VARIANTS).items():
        sub = select(df, variant=name, model__depth=deepest)
        if not sub.empty:
            band(ax2, seed_range(sub, "val", "accuracy"), lab, colour)
    ax2.set_xlabel("training step")
    ax2.set_ylabel("validation accuracy (mean; band: lowest to highest seed)")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    ax2.set_title(f"ResNet-{deepest} over training")
    m = df.drop_duplicates("run").iloc[0]
    fig.suptitle(
        f"ResNet depth with BN, without, and with SkipInit ({m['model.channels']} channels, "
        f"{m['dataset.name']}, SGD lr {m['optimizer.lr']:g}, batch "
        f"{int(m['trainer.batch_size'])}, {int(df['trainer.steps'].max()):,} steps, "
        f"{seeds_text(df)})"
    )
    save(fig, out / "resnet_depth.png", df)


def trains(df, variant: str, depth: int) -> tuple[bool, str]:
    """Whether ``variant`` trains at ``depth`` (:func:`bnlab.results.rates.trains`), and its
    cell as the table writes it."""
    rows = select(
        per_seed(with_variant(df), "val", "accuracy"), variant=variant, model__depth=depth
    )
    return rates.trains(summary(rows)), cell(rows)


def bn_trains_where_none_does_not(df) -> tuple[str, str]:
    (bn, bn_cell), (none, none_cell) = (trains(df, v, DEEP) for v in ("bn", "none"))
    text = f"ResNet-{DEEP} val accuracy: BN {bn_cell}, no norm {none_cell}"
    if bn_cell == "-" or none_cell == "-":
        return text, "-"
    return text, CONTRADICTED if not bn else (NOT_REPRODUCED if none else CONFIRMED)


ORDER = 5.1  # beside the MLP's depth claims
TRAINS = f"'trains': no seed diverged and mean val accuracy >= {number(rates.TRAINS)}"
TABLE = Table([DEPTH, "variant"], [TRAIN_LOSS, VAL])
BN_DEEP = side(f"BN ResNet-{DEEP}", variant="bn", model__depth=DEEP)
CLAIMS = [
    Claim(
        f"BN trains a deep ResNet (ResNet-{DEEP}) that does not train without normalization",
        "He et al. 2016; De & Smith 2020",
        "resnet_depth.png",
        Named(
            bn_trains_where_none_does_not,
            f"confirmed if BN trains at depth {DEEP} and no normalization does not ({TRAINS}); "
            "contradicted if BN does not; not reproduced if both do",
        ),
    ),
    Claim(
        f"SkipInit trains ResNet-{DEEP} without normalization about as well as BN",
        "De & Smith 2020",
        "resnet_depth.png",
        NotWorseBy(
            "val accuracy:",
            side("SkipInit", variant="skipinit", model__depth=DEEP),
            BN_DEEP,
            margin=SKIPINIT_WITHIN,
        ),
    ),
    Claim(
        f"With BN the deeper ResNet is the more accurate (ResNet-{DEEP} vs ResNet-{SHALLOW})",
        "He et al. 2016",
        "resnet_depth.png",
        MoreByStd(
            "val accuracy:",
            BN_DEEP,
            side(f"BN ResNet-{SHALLOW}", variant="bn", model__depth=SHALLOW),
        ),
    ),
]
