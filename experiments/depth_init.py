"""Gradient explosion at initialization against the batch size (depth_init.png).

A plain ReLU MLP of depth 32 and width 256 (He init), with and without BN, at batch sizes 2 to
1024. Left: the per-layer growth factor of the gradient norm at initialization, fitted to the
hidden-to-hidden layers (mean and std over seeds), against the batch size, with Yang et al.'s
wide, large-batch value for ReLU + BN, sqrt(pi / (pi - 1)) = 1.21. Right: the gradient norm of
every layer at three batch sizes (geometric mean over seeds). From the depth_init experiment.
"""

import matplotlib.pyplot as plt

from bnlab.results.claims import CONFIRMED, CONTRADICTED, Claim, Named
from bnlab.results.depth import THEORY_RELU_BN, geometric_mean, growth_at_init, layer_norms
from bnlab.results.figures import NORMS, log2_axis, save, seeds_text
from bnlab.results.tables import markdown


def draw(df, out):
    growth = growth_at_init(df)
    sizes = sorted(df["trainer.batch_size"].astype(int).unique())
    shown = sorted({sizes[0], sizes[len(sizes) // 2], sizes[-1]})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    for kind in ("none", "bn"):
        label, colour = NORMS[kind]
        g = growth[growth["norm.kind"] == kind].groupby("trainer.batch_size")["growth"]
        g = g.agg(["mean", "std"])
        ax.errorbar(g.index, g["mean"], g["std"], fmt="o-", color=colour, capsize=3, label=label)
        mine = df[(df["norm.kind"] == kind) & (df["step"] == 0)]
        for size, style in zip(shown, (":", "--", "-")):
            norms = layer_norms(mine[mine["trainer.batch_size"] == size])
            norms = norms.groupby("layer")["value"].apply(geometric_mean)
            ax2.plot(
                norms.index, norms.to_numpy(), style, color=colour, label=f"{label}, batch {size}"
            )
    ax.axhline(THEORY_RELU_BN, color="k", ls=":", lw=1.2, label="theory, ReLU + BN (large batch)")
    ax.axhline(1.0, color="0.5", lw=0.8)
    log2_axis(ax, sizes)
    ax.set_xlabel("batch size")
    ax.set_ylabel("gradient growth per layer at init (last -> first)")
    ax.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("layer (1: input layer)")
    ax2.set_ylabel("||dL/dW|| at init")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    depth, width = int(df["model.depth"].iloc[0]), int(df["model.width"].iloc[0])
    fig.suptitle(
        f"Gradient explosion at init vs batch size (ReLU MLP, depth {depth}, width {width}, "
        f"He init, Fashion-MNIST, {seeds_text(df)})"
    )
    save(fig, out / "depth_init.png", df)


LARGE_BATCH = 256  # the theory's regime: batch sizes from here up
TOLERANCE = 0.03  # the least distance from the theory that counts as a miss (else 2 std)


def growth_table(df) -> str:
    """Per batch size: the growth factor of the gradient norm at init, with and without BN
    (mean +/- std over seeds)."""
    growth = growth_at_init(df)
    rows = []
    for size in sorted(growth["trainer.batch_size"].astype(int).unique()):
        here = growth[growth["trainer.batch_size"] == size]
        cells = []
        for kind in ("none", "bn"):
            g = here[here["norm.kind"] == kind]["growth"].dropna()
            cells.append(f"{g.mean():.3f} +/- {g.std():.3f}" if len(g) else "-")
        rows.append([size, here["seed"].nunique(), *cells])
    return markdown(["batch size", "seeds", "no normalization", "BN"], rows)


def growth_as_theory(df) -> tuple[str, str]:
    """ReLU + BN's growth factor at batch >= LARGE_BATCH against Yang et al.'s 1.21: confirmed
    if the mean is within max(TOLERANCE, 2 std over its runs) of it."""
    growth = growth_at_init(df)
    bn = growth[(growth["norm.kind"] == "bn") & (growth["trainer.batch_size"] >= LARGE_BATCH)]
    by_size = bn.groupby("trainer.batch_size")["growth"].mean()
    g = bn["growth"].dropna()
    if g.empty:
        raise ValueError(f"no BN run at batch >= {LARGE_BATCH}")
    small = growth[(growth["norm.kind"] == "bn")].groupby("trainer.batch_size")["growth"].mean()
    text = (
        f"ReLU + BN, depth {int(bn['model.depth'].iloc[0])}, growth per layer at batch >= "
        f"{LARGE_BATCH}: {g.mean():.3f} +/- {g.std():.3f}"
        f" (mean +/- std over its {len(g)} runs; "
        f"{', '.join(f'{b}: {v:.3f}' for b, v in by_size.items())});"
        f" at batch {int(small.index[0])}: {small.iloc[0]:.3f} (large-batch theory "
        f"{THEORY_RELU_BN:.3f})"
    )
    ok = abs(g.mean() - THEORY_RELU_BN) <= max(TOLERANCE, 2 * g.std())
    return text, CONFIRMED if ok else CONTRADICTED


ORDER = 13
TABLE = growth_table
CLAIMS = [
    Claim(
        "At init, a plain ReLU network with BN has gradients growing ~1.21x per layer "
        "towards the input",
        "Yang et al. 2019",
        "depth_init.png",
        Named(
            growth_as_theory,
            f"confirmed if the mean at batch >= {LARGE_BATCH} is within max({TOLERANCE}, 2 std)"
            f" of {THEORY_RELU_BN:.2f}",
        ),
    ),
]
