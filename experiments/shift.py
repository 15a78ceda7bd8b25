"""BN's statistics under distribution shift (shift.png), after Schneider et al. 2020: one panel
per shift, test accuracy against its strength (0: the clean test set) for no normalization,
LayerNorm, GroupNorm and BN served three ways (training EMA, Algorithm 2's population
statistics, statistics re-estimated on all the shifted test images); last panel, BN's accuracy
at the largest strength (mean over the shifts) against the number of shifted images its
statistics are re-estimated from. Means over seeds. Shifts and modes:
:mod:`bnlab.training.shifts`.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnlab.results.analysis import summary
from bnlab.results.claims import CONFIRMED, CONTRADICTED, NOT_REPRODUCED, Claim, Named, compare, pm
from bnlab.results.figures import save, seeds_text
from bnlab.results.tables import cell, markdown, per_seed, select, with_variant
from bnlab.results.variants import label_and_colour

MODES = {"train": ("training EMA", "-"), "population": ("population (Alg. 2)", ":")}
HALF = 0.5  # "much of the accuracy lost": at least this fraction of it recovered


def shifts_of(df) -> tuple[list[str], list[float], list[int]]:
    """(shift kinds, strengths, AdaBN example counts) recorded in ``df``."""
    names = df.loc[df["split"] == "shift", "metric"].unique()
    parts = [n.rsplit("_", 2) for n in names]
    kinds = sorted({p[0] for p in parts})
    strengths = sorted({float(p[1]) for p in parts})
    adapt = sorted({int(p[2][5:]) for p in parts if p[2].startswith("adapt")})
    return kinds, strengths, adapt


def shifted(df, mode: str, strength: float, kinds=None) -> pd.DataFrame:
    """One row per run: its config and ``value``, its test accuracy under ``mode`` at
    ``strength``, the mean over the shift ``kinds`` (all recorded by default); strength 0 is
    the clean test accuracy."""
    kinds = kinds or shifts_of(df)[0]
    if strength == 0:
        return per_seed(with_variant(df), "test", "accuracy")
    tables = [per_seed(with_variant(df), "shift", f"{k}_{strength:g}_{mode}") for k in kinds]
    out = tables[0].copy()
    out["value"] = np.mean([t["value"].to_numpy() for t in tables], axis=0)
    return out


def rows_of(df):
    """(label, colour, linestyle, variant, mode) of every line: the other norms as trained, BN
    in each mode, its largest AdaBN last."""
    _, _, adapt = shifts_of(df)
    present = set(with_variant(df)["variant"])
    rows = [
        (*label_and_colour(v), "-", v, "train") for v in ("none", "layer", "group") if v in present
    ]
    if "bn" in present:
        bn, colour = label_and_colour("bn")
        rows += [(f"{bn}, {text}", colour, style, "bn", m) for m, (text, style) in MODES.items()]
        if adapt:
            rows.append(
                (f"{bn}, AdaBN ({adapt[-1]:,} images)", "black", "--", "bn", f"adapt{adapt[-1]}")
            )
    return rows


def draw(df, out):
    kinds, strengths, adapt = shifts_of(df)
    fig, axes = plt.subplots(
        1, len(kinds) + 1, figsize=(4.2 * (len(kinds) + 1), 4), layout="constrained"
    )
    for ax, kind in zip(axes, kinds):
        for label, colour, style, variant, mode in rows_of(df):
            means = [
                select(shifted(df, mode, s, [kind]), variant=variant)["value"].mean()
                for s in [0.0, *strengths]
            ]
            ax.plot([0.0, *strengths], means, style, marker="o", color=colour, label=label)
        ax.set_title(f"{kind}")
        ax.set_xlabel("shift strength (0: clean)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (mean over seeds)")
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    top = strengths[-1] if strengths else 1.0
    if adapt:
        means = [select(shifted(df, f"adapt{n}", top), variant="bn")["value"].mean() for n in adapt]
        ax.plot(adapt, means, "o--", color="black", label="BN, AdaBN")
        ema = select(shifted(df, "train", top), variant="bn")["value"].mean()
        ax.axhline(ema, color=label_and_colour("bn")[1], label="BN, training EMA")
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    ax.set_title(f"BN at strength {top:g}, mean over shifts")
    ax.set_xlabel("shifted test images BN's statistics come from")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    m = df.drop_duplicates("run").iloc[0]
    fig.suptitle(
        f"Test accuracy under distribution shift ({m['model.name'].upper()} "
        f"{m['model.channels']} channels, {m['dataset.name']}, "
        f"{int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "shift.png", df)


def table(df) -> str:
    """One row per variant and mode: clean test accuracy and the mean over the shifts at each
    strength."""
    _, strengths, adapt = shifts_of(df)
    header = [
        "variant",
        "statistics",
        "seeds",
        "clean test (as trained)",
        *[f"shifted, s={s:g}" for s in strengths],
    ]
    modes = {
        "train": "as trained",
        "population": "population",
        **{f"adapt{n}": f"AdaBN, {n:,} images" for n in adapt},
    }
    rows = []
    lines = [r for r in rows_of(df) if not r[4].startswith("adapt")]
    for _, _, _, variant, mode in lines + [(0, 0, 0, "bn", f"adapt{n}") for n in adapt]:
        clean = select(shifted(df, mode, 0.0), variant=variant)
        cells = [cell(select(shifted(df, mode, s), variant=variant)) for s in strengths]
        rows.append([variant, modes[mode], len(clean), cell(clean), *cells])
    return markdown(header, rows)


def bn_stats(df, mode: str, strength: float) -> tuple[float, float]:
    return summary(select(shifted(df, mode, strength), variant="bn"))[:2]


def adabn_recovers(df) -> tuple[str, str]:
    """BN at the largest strength (mean over the shifts): AdaBN from all the re-estimation
    images against the training EMA, and the clean accuracy."""
    _, strengths, adapt = shifts_of(df)
    top, n = strengths[-1], adapt[-1]
    clean, ema, ada = (
        bn_stats(df, "train", 0.0),
        bn_stats(df, "train", top),
        bn_stats(df, f"adapt{n}", top),
    )
    lost = clean[0] - ema[0]
    share = (ada[0] - ema[0]) / lost if lost > 0 else float("nan")
    text = (
        f"BN test accuracy, clean {clean[0]:.3f}; at strength {top:g} (mean over shifts): "
        f"training EMA {pm(ema)}, AdaBN ({n:,} images) {pm(ada)}: {share:.0%} of the loss recovered"
    )
    if compare(ada, ema) == CONTRADICTED or share <= 0:
        return text, CONTRADICTED
    return text, CONFIRMED if share >= HALF and compare(ada, ema) == CONFIRMED else NOT_REPRODUCED


def needs_hundreds(df) -> tuple[str, str]:
    """AdaBN from the fewest images against AdaBN from the most, at the largest strength."""
    _, strengths, adapt = shifts_of(df)
    top, few, many = strengths[-1], adapt[0], adapt[-1]
    a, b = bn_stats(df, f"adapt{many}", top), bn_stats(df, f"adapt{few}", top)
    return (
        f"BN at strength {top:g}: AdaBN from {many:,} images {pm(a)}, from {few:,} {pm(b)}",
        compare(a, b),
    )


ORDER = 9.5  # beside inference_stats
TABLE = table
CLAIMS = [
    Claim(
        "Statistics re-estimated on the shifted test data (AdaBN) recover much of the accuracy "
        "lost to a distribution shift",
        "Li et al. 2016; Schneider et al. 2020",
        "shift.png",
        Named(
            adabn_recovers,
            f"at the largest strength, mean over the shifts: confirmed if AdaBN beats the "
            f"training EMA by more than 1 std and recovers at least {HALF:.0%} of the loss; "
            "contradicted if it recovers none",
        ),
    ),
    Claim(
        "AdaBN needs hundreds of examples, not a handful",
        "Schneider et al. 2020",
        "shift.png",
        Named(
            needs_hundreds,
            "confirmed if AdaBN from the most images beats AdaBN from the fewest by more than 1 "
            "std over seeds",
        ),
    ),
]
