"""Higher learning rates with BN (lr_sweep.png): final validation accuracy against the lr.

BN vs no BN, plain SGD at 0.1 (the base) times 1, 5, 30 (the paper's BN-x5, BN-x30), 100 and
300; mean over 3 seeds with a 95% interval, diverged seeds marked. Right: validation accuracy
over training at 100x the base, where the two part ways. From the lr_sweep experiment (run
first if missing).
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnlab.results.analysis import curves, final_table
from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, Named, final, number
from bnlab.results.figures import band, final_lines, save, seeds_text
from bnlab.results.tables import TRAIN_LOSS, VAL, Table, select, with_variant
from bnlab.results.variants import label_and_colour

PAPER_FACTORS = (5, 30)  # the paper's BN-x5 and BN-x30
HOLDS_WITHIN = 0.02  # "still trains": final val accuracy at most this far below the base rate's


def base_rate(df) -> float:
    """The grid's base rate: its smallest (``optimizer.lr_grid`` of lr_sweep.yaml)."""
    return float(df["optimizer.lr"].astype(float).min())


def high_rates_train(df) -> tuple[str, str]:
    """BN at the paper's multiples of the base rate: confirmed if no seed diverges there and
    each mean final val accuracy is within HOLDS_WITHIN of the base rate's."""
    base = base_rate(df)
    rates = [base * f for f in PAPER_FACTORS]
    at_base = final(df, variant="bn", optimizer__lr=base)
    high = [final(df, variant="bn", optimizer__lr=lr) for lr in rates]
    bn = select(with_variant(df), variant="bn")
    lrs = pd.to_numeric(bn["optimizer.lr"]).to_numpy(dtype=float)
    at_high = bn[np.isclose(lrs[:, None], rates, rtol=1e-9, atol=0).any(axis=1)]
    ok = (at_high["status"] != "diverged").all() and min(m for m, _ in high) >= (
        at_base[0] - HOLDS_WITHIN
    )
    names = " / ".join(
        [number(base)] + [f"{number(lr)} (x{f})" for lr, f in zip(rates, PAPER_FACTORS)]
    )
    values = " / ".join(f"{m:.3f}" for m, _ in [at_base, *high])
    return f"BN val accuracy at lr {names}: {values}", CONFIRMED if ok else CONTRADICTED


ORDER = 2
TABLE = Table(["optimizer.lr", "variant"], [TRAIN_LOSS, VAL])
CLAIMS = [
    Claim(
        "With BN, 5x and 30x the learning rate still train",
        "Ioffe & Szegedy 2015",
        "lr_sweep.png",
        Named(
            high_rates_train,
            "confirmed if no BN seed diverges at x5 or x30 and both are within "
            f"{number(HOLDS_WITHIN)} of x1",
        ),
    ),
]


def draw(df, out):
    base = base_rate(df)
    table = final_table(df, "val", "accuracy")
    table["multiplier"] = table["optimizer.lr"] / base
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    final_lines(
        ax, table, "multiplier", "norm.kind", {k: label_and_colour(k) for k in ("none", "bn")}
    )
    ax.set_xscale("log")
    ticks = sorted(table["multiplier"].unique())
    ax.set_xticks(ticks, [f"x{m:g}" for m in ticks])
    ax.set_xlabel(f"learning rate, as a multiple of {base:g}")
    ax.set_ylabel("final validation accuracy (eval mode)")
    ax.set_ylim(0, 1)
    ax.set_title("final accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    x100 = df[df["optimizer.lr"].round(6) == round(100 * base, 6)]
    for kind in ("none", "bn"):
        sub = x100[x100["norm.kind"] == kind]
        if not sub.empty:
            label, colour = label_and_colour(kind)
            band(ax2, curves(sub, "val", "accuracy"), label, colour)
    ax2.set_xlabel("training step")
    ax2.set_ylim(0, 1)
    ax2.set_title(f"validation accuracy at x100 (lr {100 * base:g}), mean and 95% interval")
    ax2.grid(alpha=0.3)
    if ax2.get_lines():
        ax2.legend(fontsize=8)
    steps = int(df["trainer.steps"].max())
    fig.suptitle(
        f"BN and the learning rate (Fashion-MNIST, paper MLP, SGD, {steps:,} steps, "
        f"{seeds_text(df)})"
    )
    save(fig, out / "lr_sweep.png", df)
