"""The paper's Figure 1, recreated (paper_fig1.png).

(a) test accuracy over training, with and without BN (mean over seeds, 95% interval); (b), (c)
the 15th/50th/85th percentiles of the input to one sigmoid of the last hidden layer over
training, without and with BN. Runs the paper_fig1 experiment (MNIST, as in the paper) when
MNIST can be had; otherwise draws from bn_vs_nobn (Fashion-MNIST, the same network) and says
so. On MNIST it overlays the paper's own curves, read off its figure
(experiments/reference/ioffe2015_fig1a.csv).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bnlab.results.analysis import curves
from bnlab.results.figures import band, save
from bnlab.results.variants import label_and_colour

REFERENCE = Path(__file__).resolve().parent / "reference" / "ioffe2015_fig1a.csv"


def draw(df: pd.DataFrame, out: Path) -> Path:
    dataset = df["dataset.name"].iloc[0]
    act = f"{df['model.activation'].iloc[0]}_input"
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for kind in ("none", "bn"):
        label, colour = label_and_colour(kind)
        sub = df[df["norm.kind"] == kind]
        band(
            ax,
            curves(sub, "test", "accuracy"),
            f"{label} (bnlab, {sub['seed'].nunique()} seeds)",
            colour,
        )
    if dataset == "mnist":
        ref = pd.read_csv(REFERENCE, comment="#")
        for kind, variant in (("none", "no_bn"), ("bn", "bn")):
            rows = ref[ref["variant"] == variant]
            ax.plot(
                rows["step"],
                rows["test_accuracy"],
                "o:",
                color=label_and_colour(kind)[1],
                ms=4,
                label=f"{label_and_colour(kind)[0]} (paper, read off its figure)",
            )
    ax.set_ylim(0.7 if dataset == "mnist" else 0.6, 1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy (eval mode)")
    ax.set_title("(a) test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    lims = []
    for ax, kind, letter in ((axes[1], "none", "b"), (axes[2], "bn", "c")):
        sub = df[df["norm.kind"] == kind]
        for pct, style in (("p15", "--"), ("p50", "-"), ("p85", "--")):
            band(
                ax,
                curves(sub, act, pct),
                f"{pct[1:]}th percentile",
                label_and_colour(kind)[1],
                style,
            )
        ax.set_title(f"({letter}) {act.replace('_', ' ')}, {label_and_colour(kind)[0]}")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        lims.append(ax.get_ylim())
    low, high = min(lo for lo, _ in lims), max(hi for _, hi in lims)
    for ax in axes[1:]:
        ax.set_ylim(low, high)
    axes[1].set_ylabel("unit 0 of the last hidden layer (mean, 95% interval)")
    source = "MNIST" if dataset == "mnist" else f"{dataset}; the paper used MNIST"
    fig.suptitle(f"Ioffe & Szegedy (2015), Figure 1, recreated ({source})")
    fig.tight_layout()
    return save(fig, out / "paper_fig1.png", df)


FALLBACK = "bn_vs_nobn"  # drawn from it where this cannot run (no MNIST files)
