"""Why BN helps, on VGG (vgg_bn.png), after Santurkar et al. 2018 and Ghorbani et al. 2019: one
row per learning rate, no BN vs BN over training: validation accuracy (mean, 95% interval),
and, probed on training batches, the internal covariate shift of layer 2 (cos(G, G')), the
effective beta-smoothness along the gradient and the top eigenvalue of the loss's Hessian
(lines: mean over seeds, bands: min-max over seeds; probes: :mod:`bnlab.training.probes`).
"""

import matplotlib.pyplot as plt

from bnlab.results.analysis import curves
from bnlab.results.claims import Claim, MoreByStd, PerCase, side
from bnlab.results.figures import band, save, seed_range, seeds_text
from bnlab.results.tables import VAL, Column, Table, select, with_variant
from bnlab.results.variants import styles

RATES = ((0.02, "lr 0.02"), (0.1, "lr 0.1"))  # the low and the high rate of vgg_bn.yaml
PANELS = [  # (metric, title, log scale)
    ("ics_cos_layer2", "ICS: cos(G, G'), layer 2", False),
    ("beta_smoothness", "effective beta-smoothness", True),
    ("hessian_top", "top Hessian eigenvalue", True),
]


def draw(df, out):
    df = with_variant(df)
    lrs = sorted(df["optimizer.lr"].astype(float).unique())
    fig, axes = plt.subplots(
        len(lrs), 1 + len(PANELS), figsize=(17, 3.6 * len(lrs)), layout="constrained", squeeze=False
    )
    for row, lr in zip(axes, lrs):
        at_lr = select(df, optimizer__lr=lr)
        for name, (lab, colour) in styles(["none", "bn"]).items():
            runs = at_lr[at_lr["variant"] == name]
            if runs.empty:
                continue
            band(row[0], curves(runs, "val", "accuracy"), lab, colour)
            healthy = runs[runs["status"] != "diverged"]
            for ax, (metric, _, _) in zip(row[1:], PANELS):
                c = seed_range(healthy, "probe", metric)
                if not c.empty:
                    band(ax, c, lab, colour)
        row[0].set_title(f"lr {lr:g}: validation accuracy", fontsize=9)
        row[0].set_ylim(0, 1)
        for ax, (_, title, log) in zip(row[1:], PANELS):
            ax.set_title(f"lr {lr:g}: {title}", fontsize=9)
            if log:
                ax.set_yscale("log")
        for ax in row:
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=8)
    m = df.drop_duplicates("run").iloc[0]
    fig.suptitle(
        f"BN in VGG-11 ({m['model.channels']} channels, {m['dataset.name']} padded to 32x32, "
        f"SGD, batch {int(m['trainer.batch_size'])}, {seeds_text(df)}): accuracy, internal "
        f"covariate shift, smoothness and the Hessian's top eigenvalue"
    )
    save(fig, out / "vgg_bn.png", df)


ORDER = 6.1  # beside the landscape experiment's claims
LATE = dict(split="probe", late=True, with_std=False)
TABLE = Table(
    ["optimizer.lr", "variant"],
    [
        VAL,
        Column("ICS cos layer 2 (late)", "probe", "ics_cos_layer2", late=True),
        Column("beta-smoothness (late)", "probe", "beta_smoothness", late=True, digits=2),
        Column("top Hessian eigenvalue (late)", "probe", "hessian_top", late=True, digits=1),
    ],
)
BN, NO_BN = side("BN", variant="bn"), side("no BN", variant="none")
CLAIMS = [
    Claim(
        "Per-channel BN helps a VGG",
        "Ioffe & Szegedy 2015; Santurkar et al. 2018",
        "vgg_bn.png",
        PerCase("optimizer__lr", RATES, MoreByStd("val accuracy", BN, NO_BN), noun="rate"),
    ),
    Claim(
        "BN reduces internal covariate shift (VGG)",
        "Ioffe & Szegedy 2015; the blog post",
        "vgg_bn.png",
        PerCase(
            "optimizer__lr",
            RATES,
            MoreByStd("ICS cos (layer 2, late)", BN, NO_BN, metric="ics_cos_layer2", **LATE),
            noun="rate",
        ),
    ),
    Claim(
        "BN makes the loss landscape smoother (VGG; smaller beta-smoothness)",
        "Santurkar et al. 2018",
        "vgg_bn.png",
        PerCase(
            "optimizer__lr",
            RATES,
            MoreByStd(
                "beta-smoothness (late)",
                BN,
                NO_BN,
                metric="beta_smoothness",
                better="lower",
                digits=2,
                **LATE,
            ),
            noun="rate",
        ),
    ),
    Claim(
        "Without BN the Hessian has a large outlier eigenvalue that BN removes (VGG)",
        "Ghorbani et al. 2019",
        "vgg_bn.png",
        PerCase(
            "optimizer__lr",
            RATES,
            MoreByStd(
                "top Hessian eigenvalue (late)",
                BN,
                NO_BN,
                metric="hessian_top",
                better="lower",
                digits=1,
                **LATE,
            ),
            noun="rate",
        ),
    ),
]
