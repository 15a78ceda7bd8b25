"""BN vs no-BN convergence (convergence.png) and final accuracies (bn_vs_nobn_summary.png).

From the bn_vs_nobn sweep (its fast overlay: 3,000 steps).
convergence.png is the side-by-side view of a blog post explaining the paper: "No BN" | "BN",
each panel with the training and validation loss over steps, mean over seeds with a 95%
interval, same axes.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results.analysis import (
    curves,
    final_values,
    mean_interval,
    runs_table,
    steps_to_reach,
    summary,
)
from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, MoreByStd, Named, compare, pm, side
from bnlab.results.figures import band, save
from bnlab.results.tables import (
    TEST,
    TRAIN_LOSS,
    VAL,
    VAL_LOSS,
    Column,
    Table,
    select,
)
from bnlab.results.variants import label_and_colour, variant


def convergence(df, out: Path) -> Path:
    kinds = [k for k in ("none", "bn") if k in set(df["norm.kind"])]
    fig, axes = plt.subplots(
        1,
        len(kinds),
        figsize=(5.2 * len(kinds), 4.2),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, kind in zip(axes[0], kinds):
        sub = df[df["norm.kind"] == kind]
        seeds = sub["seed"].nunique()
        band(ax, curves(sub, "train", "loss"), "training loss (train mode)", "tab:blue")
        band(ax, curves(sub, "val", "loss"), "validation loss (eval mode)", "tab:orange", "--")
        ax.set_title(f"{label_and_colour(kind)[0]}  ({seeds} seed{'s' * (seeds > 1)})")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("cross-entropy loss (mean, 95% interval)")
    axes[0][0].set_yscale("log")
    fig.suptitle(_dataset_title(df, "BN vs no BN: loss over training"))
    return save(fig, out / "convergence.png", df)


def final_accuracies(df, out: Path) -> Path:
    runs = runs_table(df).set_index("run")
    kinds = [k for k in ("none", "bn") if k in set(runs["norm.kind"])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True, layout="constrained")
    for ax, split in zip(axes, ("val", "test")):
        finals = final_values(df, split, "accuracy")
        for i, kind in enumerate(kinds):
            colour = label_and_colour(kind)[1]
            members = runs[runs["norm.kind"] == kind]
            values = finals.reindex(members.index).to_numpy()
            diverged = (members["status"] == "diverged").to_numpy()
            jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(
                i + jitter[~diverged],
                values[~diverged],
                color=colour,
                alpha=0.6,
                zorder=3,
                label="one seed" if i == 0 else None,
            )
            if diverged.any():
                ax.scatter(
                    i + jitter[diverged],
                    values[diverged],
                    marker="x",
                    color="black",
                    zorder=4,
                    label="diverged (last value before it)",
                )
            mean, half, _ = mean_interval(values[~diverged])
            ax.errorbar(
                i + 0.25,
                mean,
                yerr=None if np.isnan(half) else half,
                fmt="D",
                color="black",
                capsize=5,
                label="mean, 95% interval" if i == 0 else None,
            )
            ax.annotate(f"{mean:.4f}", (i + 0.32, mean), va="center")
        ax.set_xticks(range(len(kinds)), [label_and_colour(k)[0] for k in kinds])
        ax.set_xlim(-0.5, len(kinds) - 0.2)
        ax.set_title(f"final {split} accuracy (eval mode)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(_dataset_title(df, "BN vs no BN: final accuracy per seed"))
    return save(fig, out / "bn_vs_nobn_summary.png", df)


def _dataset_title(df, title: str) -> str:
    steps = int(df["trainer.steps"].max())
    return f"{title} ({df['dataset.name'].iloc[0]}, paper MLP, {steps:,} steps)"


def draw(df, out: Path) -> None:
    convergence(df, out)
    final_accuracies(df, out)


def steps_to_target(df) -> tuple[str, str]:
    """Steps until the experiment's ``target_accuracy`` in val accuracy, BN vs no BN: the
    1-std rule, or, where only one of them got there, confirmed if it is BN."""
    target = float(df["target_accuracy"].iloc[0])  # the experiment's own (0.85 for the main job)
    steps = steps_to_reach(df, target).rename("value").reset_index()
    runs = df.assign(variant=variant(df)).drop_duplicates("run")[["run", "variant", "status"]]
    steps = runs.merge(steps, on="run")
    bn, none = (summary(select(steps, variant=v))[:2] for v in ("bn", "none"))
    words = [f"{s[0]:,.0f}" if np.isfinite(s[0]) else "never" for s in (bn, none)]
    text = f"steps to {target} val accuracy: BN {words[0]}, no BN {words[1]}"
    if np.isfinite(bn[0]) != np.isfinite(none[0]):  # only one of them got there
        return text, CONFIRMED if np.isfinite(bn[0]) else CONTRADICTED
    return text, compare(none, bn)


def val_loss_wobble(df) -> tuple[str, str]:
    """The mean absolute step-to-step change of the val loss over the second half of training,
    per run, BN vs no BN: the 1-std rule."""
    df = df.assign(variant=variant(df))
    sel = df[(df.split == "val") & (df.metric == "loss")]
    sel = sel[sel.step >= sel.step.max() / 2]
    wobble = sel.groupby(["variant", "run"])["value"].apply(lambda v: v.diff().abs().mean())
    bn, none = ((wobble[v].mean(), wobble[v].std(ddof=1)) for v in ("bn", "none"))
    text = f"mean step-to-step change of val loss, 2nd half: BN {pm(bn)}, no BN {pm(none)}"
    return text, compare(bn, none)


ORDER = 1
TABLE = Table(
    ["variant"],
    [
        TRAIN_LOSS,
        VAL_LOSS,
        VAL,
        TEST,
        Column("sigmoid input p50", "sigmoid_input", "p50", digits=2),
    ],
)
BN, NO_BN = side("BN", variant="bn"), side("no BN", variant="none")
CLAIMS = [
    Claim(
        "BN reaches a given accuracy (target_accuracy) in fewer steps",
        "Ioffe & Szegedy 2015; the blog post",
        "convergence.png",
        Named(
            steps_to_target,
            "confirmed if the difference goes the claim's way by more than 1 std over seeds; "
            "if only one variant reaches the target, confirmed if it is BN",
        ),
    ),
    Claim(
        "BN ends with a more accurate network (Figure 1: 0.98 vs 0.97 on MNIST)",
        "Ioffe & Szegedy 2015",
        "bn_vs_nobn_summary.png",
        MoreByStd("test accuracy:", BN, NO_BN, split="test"),
    ),
    Claim(
        "With BN the validation loss fluctuates more",
        "the blog post's own experiment",
        "convergence.png",
        Named(val_loss_wobble, MoreByStd.text),
    ),
]
