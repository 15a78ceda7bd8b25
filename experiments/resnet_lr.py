"""BN in a ResNet across learning rates (resnet_lr.png): left, final validation accuracy against
the rate for no normalization, BN, SkipInit and Fixup (mean over seeds and the band from the
lowest to the highest, diverged seeds marked); right, validation accuracy over training at each
variant's best rate (mean, and the band from the lowest to the highest seed), the target
accuracy dashed. Rule words (trains at, best rate, steps to the target):
:mod:`bnlab.results.rates`.
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results import rates
from bnlab.results.analysis import final_table
from bnlab.results.claims import (
    CONFIRMED,
    CONTRADICTED,
    NOT_REPRODUCED,
    Claim,
    Named,
    combined,
    compare,
    number,
)
from bnlab.results.figures import band, final_lines, save, seed_range, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table, select, with_variant
from bnlab.results.variants import label, styles

VARIANTS = ("none", "bn", "skipinit", "fixup")
RECOVERS_WITHIN = 0.01  # "about as well as BN": best-rate val accuracy at most this far below


def title(df) -> str:
    m = df.drop_duplicates("run").iloc[0]
    return (
        f"ResNet-{int(m['model.depth'])} ({m['model.channels']} channels), "
        f"{m['dataset.name']}, SGD, batch {int(m['trainer.batch_size'])}, "
        f"{int(df['trainer.steps'].max()):,} steps, {seeds_text(df)}"
    )


def draw(df, out):
    df = with_variant(df)
    present = [v for v in VARIANTS if v in set(df["variant"])]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    table = with_variant(final_table(df, "val", "accuracy"))
    final_lines(ax, table, "optimizer.lr", "variant", styles(present), spread="range")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (plain SGD)")
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("final accuracy by rate")
    for name in present:
        best = rates.best_rate(df, name)
        if np.isfinite(best):
            sub = select(df, variant=name, optimizer__lr=best)
            lab, colour = styles([name])[name]
            band(ax2, seed_range(sub, "val", "accuracy"), f"{lab}, lr {number(best)}", colour)
    target = float(df["target_accuracy"].iloc[0])
    ax2.axhline(target, color="0.4", ls="--", lw=1, label=f"target {target:g}")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("validation accuracy (mean; band: lowest to highest seed)")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    ax2.set_title("over training, each at its best rate")
    fig.suptitle(f"BN, SkipInit and Fixup across learning rates: {title(df)}")
    save(fig, out / "resnet_lr.png", df)


def trains_higher(df, a: str, b: str) -> tuple[str, str]:
    """The largest rate at which ``a`` trains against ``b``'s: confirmed if larger,
    contradicted if smaller, else not reproduced."""
    top_a, top_b = (rates.largest_training_rate(df, v) for v in (a, b))
    text = f"largest rate that trains: {label(a)} {number(top_a)}, {label(b)} {number(top_b)}"
    verdict = CONFIRMED if top_a > top_b else CONTRADICTED if top_a < top_b else NOT_REPRODUCED
    return text, verdict


def bn_trains_higher(df) -> tuple[str, str]:
    return trains_higher(df, "bn", "none")


def bn_beyond_skipinit_and_fixup(df) -> tuple[str, str]:
    results = [trains_higher(df, "bn", v) for v in ("skipinit", "fixup")]
    return "; ".join(t for t, _ in results), combined(
        ["SkipInit", "Fixup"], [v for _, v in results]
    )


def fewer_steps(df) -> tuple[str, str]:
    """Steps to ``target_accuracy`` at each one's best rate, BN vs no normalization: the 1-std
    rule; where only one got there, confirmed if it is BN."""
    target = float(df["target_accuracy"].iloc[0])
    bn, none = (rates.steps_to_target(df, v, rates.best_rate(df, v)) for v in ("bn", "none"))
    words = [f"{s[0]:,.0f}" if np.isfinite(s[0]) else "never" for s in (bn, none)]
    ratio = f" (ratio {none[0] / bn[0]:.1f}x)" if np.isfinite(bn[0] * none[0]) else ""
    text = f"steps to {target:g} val accuracy at the best rate: BN {words[0]}, none {words[1]}"
    if np.isfinite(bn[0]) != np.isfinite(none[0]):
        return text, CONFIRMED if np.isfinite(bn[0]) else CONTRADICTED
    return text + ratio, compare(none, bn)


def at_best_rate(df, name: str) -> tuple[float, float]:
    """(mean, std) of the final val accuracy at ``name``'s best rate."""
    mean, std, *_ = rates.final_by_rate(df, name)[rates.best_rate(df, name)]
    return mean, std


def bn_more_accurate(df) -> tuple[str, str]:
    bn, none = at_best_rate(df, "bn"), at_best_rate(df, "none")
    text = f"val accuracy at the best rate: BN {bn[0]:.3f}, none {none[0]:.3f}"
    return text, compare(bn, none)


def recovers(df) -> tuple[str, str]:
    """SkipInit's and Fixup's best-rate val accuracy against BN's: confirmed where within
    RECOVERS_WITHIN of it, else contradicted; per method, combined."""
    bn = at_best_rate(df, "bn")[0]
    texts, verdicts = [f"val accuracy at the best rate: BN {bn:.3f}"], []
    for name in ("skipinit", "fixup"):
        mean = at_best_rate(df, name)[0]
        texts.append(f"{label(name)} {mean:.3f}")
        verdicts.append(CONFIRMED if mean >= bn - RECOVERS_WITHIN else CONTRADICTED)
    return ", ".join(texts), combined(["SkipInit", "Fixup"], verdicts)


ORDER = 12.1  # beside the small CNN's claims
TABLE = Table(["optimizer.lr", "variant"], [TRAIN_LOSS, VAL])
ONE_STD = "confirmed if the difference goes the claim's way by more than 1 std over seeds"
TRAINS = f"'trains': no seed diverged and mean val accuracy >= {number(rates.TRAINS)}"
CLAIMS = [
    Claim(
        "BN trains a ResNet at learning rates where the plain network diverges",
        "Ioffe & Szegedy 2015",
        "resnet_lr.png",
        Named(bn_trains_higher, f"confirmed if BN trains at a larger rate of the grid ({TRAINS})"),
    ),
    Claim(
        "BN reaches a target accuracy in fewer steps (the paper's Inception: 14x), in a ResNet",
        "Ioffe & Szegedy 2015",
        "resnet_lr.png",
        Named(fewer_steps, f"each at its best rate; {ONE_STD}; if only one reaches it, BN"),
    ),
    Claim(
        "Per-channel BN helps a ResNet (each at its best rate)",
        "Ioffe & Szegedy 2015; He et al. 2016",
        "resnet_lr.png",
        Named(bn_more_accurate, ONE_STD),
    ),
    Claim(
        "SkipInit and Fixup train a ResNet without normalization about as well as BN",
        "De & Smith 2020; Zhang et al. 2019",
        "resnet_lr.png",
        Named(
            recovers,
            f"confirmed for each if its best-rate val accuracy is within "
            f"{number(RECOVERS_WITHIN)} of BN's; mixed when the two differ",
        ),
    ),
    Claim(
        "... but not at the largest learning rates: BN trains at larger ones",
        "De & Smith 2020",
        "resnet_lr.png",
        Named(bn_beyond_skipinit_and_fixup, f"as the first row, BN against each ({TRAINS})"),
    ),
]
