"""Internal covariate shift vs loss-landscape smoothness (landscape.png), after Santurkar et
al. 2018: per model (rows), over training, no BN vs BN vs noisy BN: the ICS of each layer
(||G - G'|| and cos(G, G'); mean over seeds), the range of the loss along the gradient, the
largest change of the gradient along it and the effective beta-smoothness (mean over seeds, the
band from the lowest to the highest seed).
"""

import re

from bnlab.results import variants
from bnlab.results.analysis import curves
from bnlab.results.claims import Claim, MoreByStd, NotWorseBy, PerCase, side
from bnlab.results.figures import band, plt, save, seed_range
from bnlab.results.tables import VAL, Column, Table

VARIANTS = [variants.label_and_colour(name) for name in ("none", "bn", "bn (noisy)")]
LAYER_STYLES = ["-", "--", ":", "-."]
PANELS = [
    ("ics_l2", "ICS: ||G - G'||  (per layer)", True),
    ("ics_cos", "ICS: cos(G, G')  (per layer)", False),
    ("loss_range", "loss range along the gradient", True),
    ("grad_change", "max ||grad(w - eta g) - g||", True),
    ("beta_smoothness", "effective beta-smoothness", True),
]


def draw(df, out):
    df = df.assign(variant=variants.variant(df).map(variants.label))
    probes = df[df["split"] == "probe"]
    models = [m for m in ("mlp", "cnn") if m in set(probes["model.name"])]
    fig, axes = plt.subplots(
        len(models),
        len(PANELS),
        figsize=(4.4 * len(PANELS), 3.6 * len(models)),
        layout="constrained",
        squeeze=False,
    )
    for row, model in zip(axes, models):
        sub = probes[(probes["model.name"] == model) & (probes["status"] != "diverged")]
        for ax, (metric, title, log) in zip(row, PANELS):
            if metric.startswith("ics"):
                layers = sorted(
                    {
                        int(re.search(r"layer(\d+)", m).group(1))
                        for m in sub["metric"]
                        if m.startswith(metric + "_layer")
                    }
                )
                for label, colour in VARIANTS:
                    runs = sub[sub["variant"] == label]
                    for layer, style in zip(layers, LAYER_STYLES):  # means only: 9 bands blur
                        c = curves(runs, "probe", f"{metric}_layer{layer}")
                        if not c.empty:
                            ax.plot(
                                c["step"],
                                c["mean"],
                                style,
                                color=colour,
                                lw=1.4,
                                label=f"{label}, layer {layer}",
                            )
            else:  # log scale: a t interval of 3 seeds dips below 0, so min-max over seeds
                for label, colour in VARIANTS:
                    c = seed_range(sub[sub["variant"] == label], "probe", metric)
                    if not c.empty:
                        band(ax, c, label, colour)
            if log:
                ax.set_yscale("log")
            if metric == "ics_cos":
                ax.set_ylim(0.5, 1.005)
            ax.set_title(f"{model.upper()}: {title}", fontsize=9)
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=6, ncol=1)
        row[2].legend(fontsize=7)
    seeds = df["seed"].nunique()
    fig.suptitle(
        f"Internal covariate shift and loss-landscape smoothness, no BN vs BN vs noisy "
        f"BN ({df['dataset.name'].iloc[0]}, SGD lr {df['optimizer.lr'].iloc[0]:g}, "
        f"{seeds} seeds; lines: mean over seeds, bands: min-max over seeds)"
    )
    save(fig, out / "landscape.png", df)


MODELS = (("mlp", "MLP"), ("cnn", "CNN"))
BN, NO_BN, NOISY = (
    side("BN", variant="bn"),
    side("no BN", variant="none"),
    side("noisy BN", variant="bn (noisy)"),
)
LATE = dict(split="probe", late=True, with_std=False)
ORDER = 6
TABLE = Table(
    ["model.name", "variant"],
    [
        VAL,
        Column("ICS cos layer 2 (late)", "probe", "ics_cos_layer2", late=True),
        Column("ICS l2 layer 2 (late)", "probe", "ics_l2_layer2", late=True),
        Column("beta-smoothness (late)", "probe", "beta_smoothness", late=True, digits=2),
        Column("loss range (late)", "probe", "loss_range", late=True),
    ],
)
CLAIMS = [
    Claim(
        "BN reduces internal covariate shift",
        "Ioffe & Szegedy 2015; the blog post",
        "landscape.png",
        PerCase(  # a higher cosine between a layer's input before and after = less shift
            "model__name",
            MODELS,
            MoreByStd("ICS cos (layer 2, late)", BN, NO_BN, metric="ics_cos_layer2", **LATE),
        ),
    ),
    Claim(
        "Noisy BN (ICS put back) trains about as well as BN",
        "Santurkar et al. 2018",
        "landscape.png",
        PerCase("model__name", MODELS, NotWorseBy("val accuracy", NOISY, BN, margin=0.03)),
    ),
    Claim(
        "BN makes the loss landscape smoother (smaller beta-smoothness)",
        "Santurkar et al. 2018",
        "landscape.png",
        PerCase(
            "model__name",
            MODELS,
            MoreByStd(
                "beta-smoothness (late)",
                BN,
                NO_BN,
                metric="beta_smoothness",
                better="lower",
                digits=2,
                **LATE,
            ),
        ),
    ),
]
