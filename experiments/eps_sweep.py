"""BN's epsilon (eps_sweep.png): final validation accuracy against eps.

One panel per input scale (the usual inputs; inputs scaled by 1e-3, whose first-layer
variance is about 1e-7), one line per batch size (60, 4); mean over 3 seeds with a 95%
interval. From the eps_sweep experiment.
"""

import matplotlib.pyplot as plt

from bnlab.results.analysis import final_table
from bnlab.results.claims import Claim, SpanBelow
from bnlab.results.figures import final_lines, save, seeds_text
from bnlab.results.tables import VAL, Table

DEFAULTS = {1e-8: "", 1e-5: "PyTorch, Flax, Caffe", 1e-3: "Keras, TF-slim Inception"}


def draw(df, out):
    table = final_table(df, "val", "accuracy")
    scales = sorted(table["dataset.input_scale"].unique(), reverse=True)
    fig, axes = plt.subplots(
        1,
        len(scales),
        figsize=(5.5 * len(scales), 4.3),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, scale in zip(axes[0], scales):
        sub = table[table["dataset.input_scale"] == scale]
        final_lines(
            ax,
            sub,
            "norm.eps",
            "trainer.batch_size",
            {60: ("batch 60", "tab:red"), 4: ("batch 4", "tab:purple")},
        )
        ax.set_xscale("log")
        for eps, names in DEFAULTS.items():
            if names:
                ax.axvline(eps, color="0.7", lw=0.8, ls=":")
                ax.text(
                    eps,
                    0.02,
                    names,
                    rotation=90,
                    transform=ax.get_xaxis_transform(),
                    fontsize=7,
                    color="0.4",
                    ha="right",
                    va="bottom",
                )
        ax.set_xlabel("BN epsilon")
        ax.set_title("inputs as they are" if scale == 1 else f"inputs x {scale:g}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    axes[0][0].set_ylabel("final validation accuracy (eval mode)")
    steps = int(df["trainer.steps"].max())
    fig.suptitle(
        f"What BN's epsilon changes (Fashion-MNIST, paper MLP, {steps:,} steps, {seeds_text(df)})"
    )
    save(fig, out / "eps_sweep.png", df)


ORDER = 9
TABLE = Table(["dataset.input_scale", "trainer.batch_size", "norm.eps"], [VAL])
CLAIMS = [
    Claim(
        "BN's epsilon (1e-8 to 1e-3) does not matter for ordinary inputs",
        "the blog post's open question",
        "eps_sweep.png",
        SpanBelow(
            "norm.eps",
            (1e-8, 1e-5, 1e-3),
            width=0.01,
            label="eps",
            context=" (batch 60)",
            where=dict(dataset__input_scale=1.0, trainer__batch_size=60),
        ),
    ),
]
