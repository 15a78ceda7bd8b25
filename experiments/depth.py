"""BN at depth (depth.png): gradient explosion at initialization, and which networks train.

MLPs of width 100 and depth 2 to 64, sigmoid (top row) and ReLU (bottom row), without and with
BN, each without and with skip connections. (a) the gradient norm of every layer's weights at
initialization in the deepest network (layer 1 is the input layer), geometric mean over seeds,
with Yang et al.'s 1.21 per layer for ReLU + BN; (b) the per-layer growth factor fitted to the
hidden-to-hidden layers, against depth (mean and std over seeds); (c) the final validation
accuracy at the best learning rate of the grid, against depth (mean and std over seeds; the
best rate printed by each point); (d) the gradient norms' dynamic range (max / min over layers)
in the deepest network over the first steps, at each variant's best rate. From the depth
experiment.
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results.analysis import runs_table
from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, Named, combined, deeper
from bnlab.results.depth import (
    CELL,
    THEORY_RELU_BN,
    VARIANTS,
    best_rates,
    deepest_trained,
    dynamic_range,
    geometric_mean,
    growth_at_init,
    layer_norms,
    with_variant,
)
from bnlab.results.figures import log2_axis, save, seeds_text
from bnlab.results.tables import markdown, select
from bnlab.results.variants import label, label_and_colour

FIRST_STEPS = 400  # panel (d)'s window


PANEL_TITLES = (
    "(a) gradient norm per layer at init",
    "(b) fitted growth factor at init",
    "(c) trained? final accuracy",
    "(d) dynamic range over the first steps",
)


def draw(df, out):
    df = with_variant(df)
    deepest = int(df["model.depth"].max())
    best = best_rates(df)
    growth = growth_at_init(df).drop_duplicates(
        ["model.activation", "variant", "model.depth", "seed"]
    )
    spread = dynamic_range(df).merge(runs_table(df)[["run", "optimizer.lr", *CELL]])
    activations = [a for a in ("sigmoid", "relu") if a in set(df["model.activation"])]
    fig, axes = plt.subplots(
        len(activations),
        4,
        figsize=(18, 4.2 * len(activations)),
        squeeze=False,
        layout="constrained",
    )
    for row, activation in zip(axes, activations):
        here = df[df["model.activation"] == activation]
        for name in VARIANTS:
            label, colour = label_and_colour(name)
            mine = here[here["variant"] == label]
            if not mine.empty:
                cells = {"model.activation": activation, "variant": label}
                in_cell = [select_cell(t, cells) for t in (growth, best, spread)]
                variant_panels(row, mine, *in_cell, deepest, label, colour)
        if activation == "relu":
            theory_lines(row, here, deepest)
        label_panels(row, activation, deepest, sorted(df["model.depth"].astype(int).unique()))
    for ax, title in zip(axes[0], PANEL_TITLES):
        ax.set_title(title)
    rates = ", ".join(f"{lr:g}" for lr in sorted(df["optimizer.lr"].unique()))
    fig.suptitle(
        f"BN at depth (Fashion-MNIST, width 100, batch {int(df['trainer.batch_size'].iloc[0])}, "
        f"SGD at {rates}, {int(df['trainer.steps'].max()):,} steps, {seeds_text(df)})"
    )
    save(fig, out / "depth.png", df)


def select_cell(table, cells: dict):
    """The rows of ``table`` of one activation and variant."""
    for key, value in cells.items():
        table = table[table[key] == value]
    return table


def variant_panels(row, mine, growth, best, spread, deepest: int, label: str, colour: str):
    """One variant's line in each of the four panels of a row."""
    at_init = layer_norms(mine[(mine["model.depth"] == deepest) & (mine["step"] == 0)])
    norms = at_init.groupby("layer")["value"].apply(geometric_mean)
    row[0].plot(norms.index, norms.to_numpy(), "o-", ms=2.5, color=colour, label=label)
    g = growth.dropna(subset=["growth"]).groupby("model.depth")["growth"].agg(["mean", "std"])
    row[1].errorbar(g.index, g["mean"], g["std"], fmt="o-", color=colour, capsize=3)
    row[2].errorbar(
        best["model.depth"],
        best["mean"],
        best["std"],
        fmt="o-",
        color=colour,
        capsize=3,
        label=label,
    )
    for _, cell in best.iterrows():
        row[2].annotate(
            f"{cell['optimizer.lr']:g}",
            (cell["model.depth"], cell["mean"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=6,
            color=colour,
        )
    lr = best[best["model.depth"] == deepest]["optimizer.lr"]
    s = spread[(spread["model.depth"] == deepest) & (spread["step"] <= FIRST_STEPS)]
    if not lr.empty:
        s = s[np.isclose(s["optimizer.lr"], float(lr.iloc[0]))]
        s = s.groupby("step")["range"].apply(geometric_mean)
        row[3].plot(s.index, s.to_numpy(), "o-", ms=2.5, color=colour, label=label)


def theory_lines(row, here, deepest: int) -> None:
    """Yang et al.'s growth per layer for ReLU + BN, in panels (a) and (b)."""
    bn = here[(here["variant"] == label("bn")) & (here["model.depth"] == deepest)]
    last = layer_norms(bn[bn["step"] == 0])
    last = last[last["layer"] == deepest]["value"]
    if not last.empty:
        layers = np.arange(2, deepest + 1)
        anchor = geometric_mean(last)
        row[0].plot(
            layers,
            anchor * THEORY_RELU_BN ** (deepest - layers),
            "k:",
            lw=1.2,
            label=f"theory, ReLU + BN: x{THEORY_RELU_BN:.2f} per layer",
        )
    row[1].axhline(THEORY_RELU_BN, color="k", ls=":", lw=1.2, label="theory, ReLU + BN")


def label_panels(row, activation: str, deepest: int, depths) -> None:
    """Axes, scales, reference lines and legends of one row."""
    row[1].axhline(1.0, color="0.5", lw=0.8)
    row[0].set_yscale("log")
    row[0].set_xlabel(f"layer (1: input layer; depth {deepest})")
    row[0].set_ylabel(f"{activation}: ||dL/dW|| at init")
    row[1].set_ylabel("growth per layer (last -> first)")
    row[1].set_xlabel("depth")
    row[2].set_ylabel("final val accuracy, best rate")
    row[2].set_ylim(0, 1)
    row[2].axhline(0.1, color="0.5", lw=0.8)
    row[2].set_xlabel("depth")
    row[3].set_yscale("log")
    row[3].set_xlabel(f"training step (depth {deepest}, best rate)")
    row[3].set_ylabel("max / min layer gradient norm")
    for ax in row[1:3]:
        log2_axis(ax, depths)
    for ax in row:
        ax.grid(alpha=0.3)
    row[0].legend(fontsize=7)
    if row[1].get_legend_handles_labels()[0]:
        row[1].legend(fontsize=7)


TRAINED = 0.7  # "trains": best-rate mean val accuracy within the depth budget
SHRINKS_BY = 10  # "shrinks dramatically": max/min over layers falls by this factor
BY_RECORDING = 4  # ... by this recording of the gradient norms after step 0
ACTIVATIONS = (("sigmoid", "sigmoid"), ("relu", "ReLU"))  # the figure's order: sigmoid above


def depth_table(df) -> str:
    """Per activation and variant, one column per depth: the final val accuracy at the best
    rate of the grid (mean +/- std over seeds, diverged seeds counted at chance), @ that rate;
    and the growth factor of the gradient norm at init (mean +/- std over seeds)."""
    best = best_rates(df)
    growth = growth_at_init(df).drop_duplicates([*CELL, "seed"])
    depths = sorted(best["model.depth"].astype(int).unique())
    rows = []
    for (activation, written), name in [(a, label(v)) for a in ACTIVATIONS for v in VARIANTS]:
        cells = best[(best["model.activation"] == activation) & (best["variant"] == name)]
        if cells.empty:
            continue
        g = growth[(growth["model.activation"] == activation) & (growth["variant"] == name)]
        rows.append([written, name, *(depth_cell(cells, g, d) for d in depths)])
    return markdown(["activation", "variant", *(f"depth {d}" for d in depths)], rows)


def depth_cell(cells, growth, depth: int) -> str:
    """One cell of :func:`depth_table`."""
    c = cells[cells["model.depth"] == depth]
    if c.empty:
        return "-"
    c = c.iloc[0]
    gd = growth[growth["model.depth"] == depth]["growth"].dropna()
    acc = f"{c['mean']:.3f} +/- {c['std']:.3f} @lr={c['optimizer.lr']:g}"
    if c["all_diverged"]:
        acc = "every run diverged"
    elif c["diverged"]:
        acc += f" ({int(c['diverged'])} of {int(c['seeds'])} diverged)"
    return acc + (f"; growth x{gd.mean():.3f} +/- {gd.std():.3f}" if len(gd) else "")


def range_shrinks(df) -> tuple[str, str]:
    """ReLU + BN in the deepest network at its best rate: the gradient norms' max/min over
    layers (geometric mean over seeds) at step 0 and BY_RECORDING recordings later."""
    df = with_variant(df)
    deepest = df["model.depth"].max()
    lr = select(best_rates(df), model__activation="relu", variant="BN", model__depth=deepest)
    spread = select(
        dynamic_range(df).merge(runs_table(df), on="run"),
        model__activation="relu",
        variant="BN",
        model__depth=deepest,
        optimizer__lr=float(lr["optimizer.lr"].iloc[0]),
    )
    spread = spread.groupby("step")["range"].apply(geometric_mean)
    later = spread[spread.index > 0]
    if len(later) < BY_RECORDING:
        raise ValueError(f"fewer than {BY_RECORDING} gradient-norm recordings after step 0")
    step = int(later.index[BY_RECORDING - 1])
    text = (
        f"ReLU + BN, depth {deepest}, best rate: gradient norms' max/min over layers (geometric "
        f"mean over seeds) {spread.iloc[0]:,.0f} at step 0, {later.iloc[0]:,.1f} at step "
        f"{int(later.index[0])}, {spread[step]:,.1f} at step {step}"
    )
    return text, CONFIRMED if spread[step] * SHRINKS_BY <= spread.iloc[0] else CONTRADICTED


def deepest(df):
    """(activation, variant) -> the deepest depth trained (:data:`TRAINED`; NaN: none)."""
    trained = deepest_trained(best_rates(df), TRAINED)
    return trained.set_index(["model.activation", "variant"])["deepest trained"]


def depths_written(found, activation: str, variants) -> str:
    return ", ".join(
        f"{v} {'none' if np.isnan(found[(activation, v)]) else int(found[(activation, v)])}"
        for v in variants
    )


def bn_trains_deeper(df) -> tuple[str, str]:
    """Per activation, the deepest depth trained with BN vs without normalization."""
    found = deepest(df)
    plain, bn = "no normalization", "BN"
    out, verdicts = [], []
    for activation, written in ACTIVATIONS:
        out.append(f"{written}: " + depths_written(found, activation, (bn, plain)))
        verdicts.append(deeper(found[(activation, bn)], found[(activation, plain)]))
    depths = df["model.depth"].astype(int)
    text = f"deepest depth trained (of {depths.min()}-{depths.max()}): " + "; ".join(out)
    return text, combined([label for _, label in ACTIVATIONS], verdicts)


def skips_train_deeper(df) -> tuple[str, str]:
    """ReLU: the deepest depth trained with BN + skips vs plain BN."""
    found = deepest(df)
    bn, skips = "BN", "BN + skips"
    text = "ReLU, deepest depth trained: " + depths_written(found, "relu", (skips, bn))
    return text, deeper(found[("relu", skips)], found[("relu", bn)])


ORDER = 14
TABLE = depth_table
CLAIMS = [
    Claim(
        "After the first steps, the gradients' dynamic range across layers shrinks dramatically",
        "Yang et al. 2019",
        "depth.png",
        Named(
            range_shrinks,
            f"confirmed if max/min falls at least {SHRINKS_BY}x by the {BY_RECORDING}th recording"
            " after step 0 (step 100)",
        ),
    ),
    Claim(
        "BN makes deep networks trainable",
        "Ioffe & Szegedy 2015; the blog post",
        "depth.png",
        Named(
            bn_trains_deeper,
            f"trained: best-rate mean val accuracy >= {TRAINED} at that depth and every "
            "shallower one; confirmed if BN trains deeper than no normalization",
        ),
    ),
    Claim(
        "Skip connections make deep (ReLU) BN networks trainable",
        "Yang et al. 2019; He et al. 2016",
        "depth.png",
        Named(
            skips_train_deeper,
            f"trained as above (>= {TRAINED}); confirmed if BN + skips trains deeper than plain BN",
        ),
    ),
]
