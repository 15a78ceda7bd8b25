"""``make report``: the numbers of docs/results.md, written from the run folders in outputs/.

docs/results.md (and docs/reference.md) is hand-written prose around generated blocks::

    <!-- report: lr_sweep -->
    ...written by this module...
    <!-- /report -->

Each block named after an experiment gets that experiment's table (:data:`TABLES`), computed
from ``outputs/<experiment>/`` and headed by the command that made the data and the commit(s)
of the code that made it. The block ``claims`` gets the claims ledger (:data:`CLAIMS`): one row
per claim the harness tests, with its source, the measured numbers and a verdict decided by a
stated rule from those numbers (confirmed, contradicted, or not reproduced at this scale). A
block whose runs are not there is left as it was, and said so. The block ``config`` gets every
config key with its default and meaning, from the schema.

Every value is a mean over seeds with, after +/-, the standard deviation over seeds, at the
run's last evaluation unless the column says otherwise; diverged runs are counted, not
averaged.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from bnlab import depth
from bnlab.analysis import final_table, load_runs, runs_table, steps_to_reach
from bnlab.config import non_result_keys, reference

PAGES = [Path("docs/results.md"), Path("docs/reference.md")]
BLOCK = re.compile(r"(<!-- report: (\w+) -->\n)(.*?)(<!-- /report -->)", re.S)
CONFIRMED, CONTRADICTED, NOT_REPRODUCED = "confirmed", "contradicted", "not reproduced here"


# ----------------------------------------------------------------------------- values


def per_seed(df: pd.DataFrame, split: str, metric: str, late: bool = False) -> pd.DataFrame:
    """One row per run: its config, status and ``value``: the final value of split/metric, or
    with ``late`` its mean over the second half of training."""
    if not late:
        return final_table(df, split, metric)
    sel = df[(df["split"] == split) & (df["metric"] == metric)]
    sel = sel[sel["step"] >= sel.groupby("run")["step"].transform("max") / 2]
    runs = final_table(df, split, metric).drop(columns="value").set_index("run")
    return runs.join(sel.groupby("run")["value"].mean()).reset_index()


def summary(rows: pd.DataFrame) -> tuple[float, float, int, int]:
    """(mean, std, seeds averaged, diverged) of ``rows['value']``."""
    healthy = rows[rows["status"] != "diverged"]["value"].astype(float).dropna()
    std = healthy.std(ddof=1) if len(healthy) > 1 else float("nan")
    return healthy.mean(), std, len(healthy), int((rows["status"] == "diverged").sum())


def cell(rows: pd.DataFrame, digits: int = 3) -> str:
    mean, std, n, diverged = summary(rows)
    if n == 0:
        return f"all {diverged} diverged" if diverged else "-"
    text = f"{mean:.{digits}f}" + (f" +/- {std:.{digits}f}" if np.isfinite(std) else "")
    return text + (f" ({diverged} of {n + diverged} diverged)" if diverged else "")


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows whose config keys (dots written as double underscores) equal the given values
    (numbers compared as numbers: 3 matches 3.0)."""
    for key, value in where.items():
        column = df[key.replace("__", ".")]
        if value is None or (isinstance(value, float) and np.isnan(value)):  # null in the config
            df = df[column.isna()]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            df = df[np.isclose(numbers, float(value), rtol=1e-9, atol=0)]
        else:
            df = df[column.astype(str) == str(value)]
    return df


def variant(df: pd.DataFrame) -> pd.Series:
    """A readable name of each run's normalization: none, bn, bn (noisy), bn (no gamma/beta)."""
    name = df["norm.kind"].astype(str)
    name = name.where(df["norm.noise"].astype(float).fillna(0) == 0, name + " (noisy)")
    return name.where(df["norm.affine"].astype(bool), name + " (no gamma/beta)")


# ----------------------------------------------------------------------------- tables


def shown(value) -> str:
    """A key's value as written in a table: 4.0 as 4, other values as they are."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


@dataclass
class Column:
    label: str
    split: str
    metric: str
    late: bool = False
    digits: int = 3


def table(df: pd.DataFrame, by: Sequence[str], columns: Sequence[Column]) -> str:
    """One row per value of the keys ``by`` (``variant`` for the normalization's name), one
    column per :class:`Column`."""
    df = df.assign(variant=variant(df))
    values = {c.label: per_seed(df, c.split, c.metric, c.late) for c in columns}
    keys = df.drop_duplicates("run")[list(by)].drop_duplicates()
    keys = keys.sort_values(list(by), key=lambda s: pd.to_numeric(s, errors="coerce").fillna(0))
    rows = []
    for _, key in keys.iterrows():
        where = {k.replace(".", "__"): key[k] for k in by}
        seeds = select(values[columns[0].label], **where)
        rows.append(
            [*map(shown, key), len(seeds)]
            + [cell(select(values[c.label], **where), c.digits) for c in columns]
        )
    return markdown([*by, "seeds", *(c.label for c in columns)], rows)


def depth_table(df: pd.DataFrame) -> str:
    """Per activation and variant, one column per depth: the final val accuracy at the best
    rate of the grid (mean +/- std over seeds, diverged seeds counted at chance), @ that rate;
    and the growth factor of the gradient norm at init (mean +/- std over seeds)."""
    best = depth.best_rates(df)
    growth = depth.growth_at_init(df).drop_duplicates([*depth.CELL, "seed"])
    depths = sorted(best["model.depth"].astype(int).unique())
    rows = []
    for activation, name in [
        (a, v[0]) for a in ("sigmoid", "relu") for v in depth.VARIANTS.values()
    ]:  # the figure's order: sigmoid above ReLU
        cells = best[(best["model.activation"] == activation) & (best["variant"] == name)]
        if cells.empty:
            continue
        g = growth[(growth["model.activation"] == activation) & (growth["variant"] == name)]
        row = [activation_name(activation), name]
        for d in depths:
            c = cells[cells["model.depth"] == d]
            if c.empty:
                row.append("-")
                continue
            c = c.iloc[0]
            gd = g[g["model.depth"] == d]["growth"].dropna()
            acc = f"{c['mean']:.3f} +/- {c['std']:.3f} @lr={c['optimizer.lr']:g}"
            if c["all_diverged"]:
                acc = "every run diverged"
            elif c["diverged"]:
                acc += f" ({int(c['diverged'])} of {int(c['seeds'])} diverged)"
            row.append(acc + (f"; growth x{gd.mean():.3f} +/- {gd.std():.3f}" if len(gd) else ""))
        rows.append(row)
    return markdown(["activation", "variant", *(f"depth {d}" for d in depths)], rows)


def depth_init_table(df: pd.DataFrame) -> str:
    """Per batch size: the growth factor of the gradient norm at init, with and without BN."""
    growth = depth.growth_at_init(df)
    rows = []
    for size in sorted(growth["trainer.batch_size"].astype(int).unique()):
        here = growth[growth["trainer.batch_size"] == size]
        cells = []
        for kind in ("none", "bn"):
            g = here[here["norm.kind"] == kind]["growth"].dropna()
            cells.append(f"{g.mean():.3f} +/- {g.std():.3f}" if len(g) else "-")
        rows.append([size, here["seed"].nunique(), *cells])
    return markdown(["batch size", "seeds", "no normalization", "BN"], rows)


VAL = Column("val accuracy", "val", "accuracy")
TRAIN_LOSS = Column("train loss (last window)", "train", "loss")
VAL_LOSS = Column("val loss", "val", "loss")
TABLES: dict[str, Callable[[pd.DataFrame], str]] = {
    "bn_vs_nobn": lambda df: table(
        df,
        ["variant"],
        [
            TRAIN_LOSS,
            VAL_LOSS,
            VAL,
            Column("test accuracy", "test", "accuracy"),
            Column("sigmoid input p50", "sigmoid_input", "p50", digits=2),
        ],
    ),
    "eps_sweep": lambda df: table(
        df, ["dataset.input_scale", "trainer.batch_size", "norm.eps"], [VAL]
    ),
    "lr_sweep": lambda df: table(df, ["optimizer.lr", "variant"], [TRAIN_LOSS, VAL]),
    "init_sweep": lambda df: table(
        df,
        ["model.init_std", "variant"],
        [Column("train accuracy (eval mode)", "train", "accuracy")],
    ),
    "whitening_vs_bn": lambda df: table(df, ["variant"], [TRAIN_LOSS, VAL]),
    "batch_size_sweep": lambda df: table(
        df,
        ["trainer.batch_size", "variant"],
        [VAL, Column("val accuracy, batch statistics", "val", "accuracy_trainmode")],
    ),
    "placement": lambda df: table(df, ["model.activation", "norm.placement"], [TRAIN_LOSS, VAL]),
    "inference_stats": lambda df: table(
        df,
        ["trainer.batch_size", "norm.stats"],
        [VAL, Column("val accuracy, batch statistics", "val", "accuracy_trainmode")],
    ),
    "regularization": lambda df: table(
        df,
        ["variant", "model.dropout", "optimizer.weight_decay"],
        [Column("train loss (eval mode)", "train", "loss_evalmode"), VAL_LOSS, VAL],
    ),
    "cnn_bn_vs_nobn": lambda df: table(df, ["variant"], [TRAIN_LOSS, VAL]),
    "small_batch": lambda df: table(df, ["trainer.batch_size", "variant"], [VAL]),
    "non_iid": lambda df: table(df, ["variant", "dataset.classes_per_batch"], [TRAIN_LOSS, VAL]),
    "depth": depth_table,
    "depth_init": depth_init_table,
    "landscape": lambda df: table(
        df,
        ["model.name", "variant"],
        [
            VAL,
            Column("ICS cos layer 2 (late)", "probe", "ics_cos_layer2", late=True),
            Column("ICS l2 layer 2 (late)", "probe", "ics_l2_layer2", late=True),
            Column("beta-smoothness (late)", "probe", "beta_smoothness", late=True, digits=2),
            Column("loss range (late)", "probe", "loss_range", late=True),
        ],
    ),
}


# ----------------------------------------------------------------------------- claims


def final(df, split="val", metric="accuracy", late=False, **where) -> tuple[float, float]:
    mean, std, _, _ = summary(
        select(per_seed(df.assign(variant=variant(df)), split, metric, late), **where)
    )
    return mean, std


def compare(a: tuple[float, float], b: tuple[float, float], higher_is: str) -> str:
    """``higher_is`` the claim's direction for a > b: a verdict from two (mean, std) pairs,
    "not reproduced" when the means are within one standard deviation of each other."""
    if np.isnan(a[0]) or np.isnan(b[0]):
        return "-"
    spread = np.nanmax([a[1], b[1], 0.0])
    if abs(a[0] - b[0]) <= spread:
        return NOT_REPRODUCED
    return CONFIRMED if (a[0] > b[0]) == (higher_is == "confirms") else CONTRADICTED


def deeper(a: float, b: float) -> str:
    """The verdict that ``a`` (NaN: 0) trains deeper than ``b``."""
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    return CONFIRMED if a > b else (CONTRADICTED if a < b else NOT_REPRODUCED)


def combined(names: Sequence[str], verdicts: Sequence[str]) -> str:
    """One verdict when every case agrees, else ``mixed: <case> <verdict>, ...``."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    return "mixed: " + ", ".join(f"{n} {v}" for n, v in zip(names, verdicts))


def activation_name(activation: str) -> str:
    return {"relu": "ReLU"}.get(activation, activation)


def pm(value: tuple[float, float], digits: int = 3) -> str:
    return f"{value[0]:.{digits}f} +/- {value[1]:.{digits}f}"


def claim_faster(dfs):
    df = dfs["bn_vs_nobn"]
    target = float(df["target_accuracy"].iloc[0])  # the experiment's own (0.85 for the main job)
    steps = steps_to_reach(df, target).rename("value").reset_index()
    runs = df.assign(variant=variant(df)).drop_duplicates("run")[["run", "variant", "status"]]
    steps = runs.merge(steps, on="run")
    bn, none = (summary(select(steps, variant=v))[:2] for v in ("bn", "none"))
    words = [f"{s[0]:,.0f}" if np.isfinite(s[0]) else "never" for s in (bn, none)]
    text = f"steps to {target} val accuracy: BN {words[0]}, no BN {words[1]}"
    if np.isfinite(bn[0]) != np.isfinite(none[0]):  # only one of them got there
        return text, CONFIRMED if np.isfinite(bn[0]) else CONTRADICTED
    return text, compare(none, bn, "confirms")


def claim_final_accuracy(dfs):
    bn, none = (final(dfs["bn_vs_nobn"], "test", variant=v) for v in ("bn", "none"))
    return f"test accuracy: BN {pm(bn)}, no BN {pm(none)}", compare(bn, none, "confirms")


def claim_val_loss_noisier(dfs):
    df = dfs["bn_vs_nobn"].assign(variant=lambda d: variant(d))
    sel = df[(df.split == "val") & (df.metric == "loss")]
    sel = sel[sel.step >= sel.step.max() / 2]
    wobble = sel.groupby(["variant", "run"])["value"].apply(lambda v: v.diff().abs().mean())
    bn, none = ((wobble[v].mean(), wobble[v].std(ddof=1)) for v in ("bn", "none"))
    text = f"mean step-to-step change of val loss, 2nd half: BN {pm(bn)}, no BN {pm(none)}"
    return text, compare(bn, none, "confirms")


def claim_high_lr(dfs):
    df = dfs["lr_sweep"]
    base = final(df, variant="bn", optimizer__lr=0.1)
    x5, x30 = (final(df, variant="bn", optimizer__lr=lr) for lr in (0.5, 3))
    bn = select(df.assign(variant=variant(df)), variant="bn")
    high = bn[pd.to_numeric(bn["optimizer.lr"]).isin([0.5, 3.0])]
    ok = (high["status"] != "diverged").all() and min(x5[0], x30[0]) >= base[0] - 0.02
    text = (
        f"BN val accuracy at lr 0.1 / 0.5 (x5) / 3 (x30): "
        f"{base[0]:.3f} / {x5[0]:.3f} / {x30[0]:.3f}"
    )
    return text, CONFIRMED if ok else CONTRADICTED


def claim_init_scales(dfs):
    table_ = per_seed(dfs["init_sweep"].assign(variant=lambda d: variant(d)), "train", "accuracy")
    healthy = table_[table_.status != "diverged"]
    trained = healthy.groupby(["variant", "model.init_std"])["value"]
    good = (trained.mean() > 0.5).groupby(level=0).sum()
    bn, none = good.get("bn", 0), good.get("none", 0)
    text = f"init scales (of 16) with train accuracy > 0.5: BN {bn}, no BN {none}"
    return text, CONFIRMED if bn > none else CONTRADICTED


def claim_tiny_batch(dfs):
    df = dfs["batch_size_sweep"]
    two, four = (final(df, variant="bn", trainer__batch_size=b) for b in (2, 4))
    text = f"BN val accuracy at batch 2: {pm(two)}; at batch 4: {pm(four)}"
    return text, CONFIRMED if four[0] - two[0] > 0.1 else NOT_REPRODUCED


def claim_population(dfs):
    df = dfs["inference_stats"]
    rows, worse = [], False
    for batch in sorted(df["trainer.batch_size"].unique()):
        ema, pop = (
            final(df, norm__stats=s, trainer__batch_size=batch) for s in ("ema", "population")
        )
        rows.append(f"batch {batch}: {pop[0]:.3f} vs {ema[0]:.3f}")
        worse |= pop[0] < ema[0] - max(ema[1], pop[1])
    return "population vs EMA val accuracy, " + "; ".join(rows), (
        CONTRADICTED if worse else CONFIRMED
    )


def claim_ics(dfs):
    df = dfs["landscape"]
    out, verdicts = [], []
    for model in ("mlp", "cnn"):
        bn, none = (
            final(df, "probe", "ics_cos_layer2", late=True, model__name=model, variant=v)
            for v in ("bn", "none")
        )
        out.append(f"{model.upper()} ICS cos (layer 2, late) BN {bn[0]:.3f}, no BN {none[0]:.3f}")
        verdicts.append(compare(bn, none, "confirms"))  # higher cos = less ICS
    verdict = (
        CONTRADICTED
        if CONTRADICTED in verdicts
        else (CONFIRMED if set(verdicts) == {CONFIRMED} else NOT_REPRODUCED)
    )
    return "; ".join(out), verdict


def claim_noisy_bn(dfs):
    df = dfs["landscape"]
    out, ok = [], True
    for model in ("mlp", "cnn"):
        noisy, bn = (final(df, model__name=model, variant=v) for v in ("bn (noisy)", "bn"))
        out.append(f"{model.upper()} val accuracy noisy BN {noisy[0]:.3f}, BN {bn[0]:.3f}")
        ok &= noisy[0] >= bn[0] - 0.03
    return "; ".join(out), CONFIRMED if ok else CONTRADICTED


def claim_smoother(dfs):
    df = dfs["landscape"]
    out, verdicts = [], []
    for model in ("mlp", "cnn"):
        bn, none = (
            final(df, "probe", "beta_smoothness", late=True, model__name=model, variant=v)
            for v in ("bn", "none")
        )
        out.append(f"{model.upper()} beta-smoothness (late) BN {bn[0]:.2f}, no BN {none[0]:.2f}")
        verdicts.append(compare(none, bn, "confirms"))
    verdict = combined(("MLP", "CNN"), verdicts)
    return "; ".join(out), verdict


def claim_regularizes(dfs):
    df = dfs["regularization"]
    gaps = {}
    for v in ("bn", "none"):
        where = dict(variant=v, model__dropout=0.0, optimizer__weight_decay=0.0)
        val = per_seed(df.assign(variant=variant(df)), "val", "loss").pipe(select, **where)
        train = per_seed(df.assign(variant=variant(df)), "train", "loss_evalmode").pipe(
            select, **where
        )
        gap = val.set_index("run")["value"] - train.set_index("run")["value"]
        gaps[v] = (gap.mean(), gap.std(ddof=1))
    text = f"val loss - train loss, no dropout: BN {pm(gaps['bn'])}, no BN {pm(gaps['none'])}"
    return text, compare(gaps["none"], gaps["bn"], "confirms")


def claim_gamma_beta(dfs):
    df = dfs["whitening_vs_bn"]
    bn, plain = (final(df, variant=v) for v in ("bn", "bn (no gamma/beta)"))
    return f"val accuracy BN {pm(bn)}, standardize only {pm(plain)}", compare(bn, plain, "confirms")


def claim_eps(dfs):
    df = select(dfs["eps_sweep"], dataset__input_scale=1.0, trainer__batch_size=60)
    means = {eps: final(df, norm__eps=eps)[0] for eps in (1e-8, 1e-5, 1e-3)}
    spread = max(means.values()) - min(means.values())
    text = "val accuracy at eps 1e-8 / 1e-5 / 1e-3 (batch 60): " + " / ".join(
        f"{m:.3f}" for m in means.values()
    )
    return text, CONFIRMED if spread < 0.01 else CONTRADICTED


def claim_layer_norm_cnn(dfs):
    bn, layer = (final(dfs["cnn_bn_vs_nobn"], variant=v) for v in ("bn", "layer"))
    return f"CNN val accuracy at batch 60: BN {pm(bn)}, LayerNorm {pm(layer)}", compare(
        bn, layer, "confirms"
    )


def claim_cnn(dfs):
    bn, none = (final(dfs["cnn_bn_vs_nobn"], variant=v) for v in ("bn", "none"))
    return f"val accuracy BN {pm(bn)}, no BN {pm(none)}", compare(bn, none, "confirms")


def claim_group_norm_small_batch(dfs):
    df = dfs["small_batch"]
    gn2, bn2 = (final(df, variant=v, trainer__batch_size=2) for v in ("group", "bn"))
    by_size = per_seed(df.assign(variant=variant(df)), "val", "accuracy")
    gn = select(by_size, variant="group").groupby("trainer.batch_size")["value"].mean()
    text = (
        f"val accuracy at batch 2: GroupNorm {pm(gn2)}, BN {pm(bn2)}; GroupNorm's range "
        f"over batch sizes {gn.min():.3f}-{gn.max():.3f}"
    )
    return text, compare(gn2, bn2, "confirms")


def claim_renorm_non_iid(dfs):
    df = select(dfs["non_iid"], dataset__classes_per_batch=2)
    renorm, bn = (final(df, variant=v) for v in ("batch_renorm", "bn"))
    return f"val accuracy, 2-class batches: Batch Renorm {pm(renorm)}, BN {pm(bn)}", compare(
        renorm, bn, "confirms"
    )


TRAINED = 0.7  # "trains": best-rate mean val accuracy within the depth budget


def claim_growth_at_init(dfs):
    growth = depth.growth_at_init(dfs["depth_init"])
    bn = growth[(growth["norm.kind"] == "bn") & (growth["trainer.batch_size"] >= 256)]
    by_size = bn.groupby("trainer.batch_size")["growth"].mean()
    g = bn["growth"].dropna()
    if g.empty:
        raise ValueError("no BN run at batch >= 256")
    small = growth[(growth["norm.kind"] == "bn")].groupby("trainer.batch_size")["growth"].mean()
    text = (
        f"ReLU + BN, depth {int(bn['model.depth'].iloc[0])}, growth per layer at batch >= 256: "
        f"{g.mean():.3f} +/- {g.std():.3f}"
        f" (mean +/- std over its {len(g)} runs; "
        f"{', '.join(f'{b}: {v:.3f}' for b, v in by_size.items())});"
        f" at batch {int(small.index[0])}: {small.iloc[0]:.3f} (large-batch theory "
        f"{depth.THEORY_RELU_BN:.3f})"
    )
    ok = abs(g.mean() - depth.THEORY_RELU_BN) <= max(0.03, 2 * g.std())
    return text, CONFIRMED if ok else CONTRADICTED


def _relu_bn_spread(dfs):
    df = depth.with_variant(dfs["depth"])
    deepest = df["model.depth"].max()
    best = depth.best_rates(df)
    lr = select(best, model__activation="relu", variant="BN", model__depth=deepest)
    spread = depth.dynamic_range(df).merge(runs_table(df), on="run")
    spread = select(
        spread,
        model__activation="relu",
        variant="BN",
        model__depth=deepest,
        optimizer__lr=float(lr["optimizer.lr"].iloc[0]),
    )
    return deepest, spread.groupby("step")["range"].apply(depth.geometric_mean)


def claim_range_shrinks(dfs):
    deepest, spread = _relu_bn_spread(dfs)
    later = spread[spread.index > 0]
    if len(later) < 4:
        raise ValueError("fewer than 4 gradient-norm recordings after step 0")
    step = int(later.index[3])
    text = (
        f"ReLU + BN, depth {deepest}, best rate: gradient norms' max/min over layers (geometric "
        f"mean over seeds) {spread.iloc[0]:,.0f} at step 0, {later.iloc[0]:,.1f} at step "
        f"{int(later.index[0])}, {spread[step]:,.1f} at step {step}"
    )
    return text, CONFIRMED if spread[step] * 10 <= spread.iloc[0] else CONTRADICTED


def _deepest(dfs):
    trained = depth.deepest_trained(depth.best_rates(dfs["depth"]), TRAINED)
    return trained.set_index(["model.activation", "variant"])["deepest trained"]


def _depth_words(deepest, activation, variants):
    return ", ".join(
        f"{v} {'none' if np.isnan(deepest[(activation, v)]) else int(deepest[(activation, v)])}"
        for v in variants
    )


def claim_bn_trains_deep(dfs):
    deepest = _deepest(dfs)
    plain, bn = "no normalization", "BN"
    out, verdicts = [], []
    for activation in ("sigmoid", "relu"):
        label = activation_name(activation)
        out.append(f"{label}: " + _depth_words(deepest, activation, (bn, plain)))
        verdicts.append(deeper(deepest[(activation, bn)], deepest[(activation, plain)]))
    verdict = combined(("sigmoid", "ReLU"), verdicts)
    depths = dfs["depth"]["model.depth"].astype(int)
    return f"deepest depth trained (of {depths.min()}-{depths.max()}): " + "; ".join(out), verdict


def claim_skips_rescue_bn(dfs):
    deepest = _deepest(dfs)
    bn, skips = "BN", "BN + skips"
    text = "ReLU, deepest depth trained: " + _depth_words(deepest, "relu", (skips, bn))
    return text, deeper(deepest[("relu", skips)], deepest[("relu", bn)])


@dataclass
class Claim:
    text: str
    source: str
    experiments: tuple[str, ...]
    measure: Callable[[dict], tuple[str, str]]
    figure: str
    rule: str = "confirmed if the difference goes the claim's way by more than 1 std over seeds"


CLAIMS = [
    Claim(
        "BN reaches a given accuracy (target_accuracy) in fewer steps",
        "Ioffe & Szegedy 2015; the blog post",
        ("bn_vs_nobn",),
        claim_faster,
        "convergence.png",
    ),
    Claim(
        "BN ends with a more accurate network (Figure 1: 0.98 vs 0.97 on MNIST)",
        "Ioffe & Szegedy 2015",
        ("bn_vs_nobn",),
        claim_final_accuracy,
        "bn_vs_nobn_summary.png",
    ),
    Claim(
        "With BN the validation loss fluctuates more",
        "the blog post's own experiment",
        ("bn_vs_nobn",),
        claim_val_loss_noisier,
        "convergence.png",
    ),
    Claim(
        "With BN, 5x and 30x the learning rate still train",
        "Ioffe & Szegedy 2015",
        ("lr_sweep",),
        claim_high_lr,
        "lr_sweep.png",
        "confirmed if no BN seed diverges at x5 or x30 and both are within 0.02 of x1",
    ),
    Claim(
        "BN trains at initial weight scales where the plain network does not",
        "Saito, Deep Learning from Scratch, ch. 6",
        ("init_sweep",),
        claim_init_scales,
        "init_sweep.png",
        "confirmed if BN reaches 0.5 train accuracy at more of the scales",
    ),
    Claim(
        "BN breaks at very small batches (batch 2)",
        "Ioffe 2017; Wu & He 2018",
        ("batch_size_sweep",),
        claim_tiny_batch,
        "batch_size_sweep.png",
        "confirmed if batch 2 is more than 0.1 below batch 4",
    ),
    Claim(
        "Population statistics (Algorithm 2) serve inference at least as well as the EMA",
        "Ioffe & Szegedy 2015",
        ("inference_stats",),
        claim_population,
        "inference_stats.png",
        "contradicted if population is more than 1 std below EMA at a batch size",
    ),
    Claim(
        "BN reduces internal covariate shift",
        "Ioffe & Szegedy 2015; the blog post",
        ("landscape",),
        claim_ics,
        "landscape.png",
        "per model, the 1-std rule on the ICS cosine; contradicted if one model contradicts",
    ),
    Claim(
        "Noisy BN (ICS put back) trains about as well as BN",
        "Santurkar et al. 2018",
        ("landscape",),
        claim_noisy_bn,
        "landscape.png",
        "confirmed if noisy BN is within 0.03 of BN for both models",
    ),
    Claim(
        "BN makes the loss landscape smoother (smaller beta-smoothness)",
        "Santurkar et al. 2018",
        ("landscape",),
        claim_smoother,
        "landscape.png",
        "per model, the 1-std rule; mixed when the two models differ",
    ),
    Claim(
        "BN regularizes (a smaller gap between validation and training loss)",
        "Ioffe & Szegedy 2015; the blog post",
        ("regularization",),
        claim_regularizes,
        "regularization.png",
    ),
    Claim(
        "gamma and beta make BN stronger than plain standardization",
        "the blog post",
        ("whitening_vs_bn",),
        claim_gamma_beta,
        "whitening_vs_bn.png",
    ),
    Claim(
        "BN's epsilon (1e-8 to 1e-3) does not matter for ordinary inputs",
        "the blog post's open question",
        ("eps_sweep",),
        claim_eps,
        "eps_sweep.png",
        "confirmed if the three means span less than 0.01",
    ),
    Claim(
        "GroupNorm beats BN at batch 2",
        "Wu & He 2018",
        ("small_batch",),
        claim_group_norm_small_batch,
        "small_batch.png",
    ),
    Claim(
        "Batch Renorm beats BN when batches are not i.i.d.",
        "Ioffe 2017",
        ("non_iid",),
        claim_renorm_non_iid,
        "non_iid.png",
    ),
    Claim(
        "LayerNorm loses to BN on a CNN at an ordinary batch size",
        "Wu & He 2018",
        ("cnn_bn_vs_nobn",),
        claim_layer_norm_cnn,
        "cnn_bn_vs_nobn.png",
    ),
    Claim(
        "At init, a plain ReLU network with BN has gradients growing ~1.21x per layer "
        "towards the input",
        "Yang et al. 2019",
        ("depth_init",),
        claim_growth_at_init,
        "depth_init.png",
        "confirmed if the mean at batch >= 256 is within max(0.03, 2 std) of 1.21",
    ),
    Claim(
        "After the first steps, the gradients' dynamic range across layers shrinks dramatically",
        "Yang et al. 2019",
        ("depth",),
        claim_range_shrinks,
        "depth.png",
        "confirmed if max/min falls at least 10x by the 4th recording after step 0 (step 100)",
    ),
    Claim(
        "BN makes deep networks trainable",
        "Ioffe & Szegedy 2015; the blog post",
        ("depth",),
        claim_bn_trains_deep,
        "depth.png",
        f"trained: best-rate mean val accuracy >= {TRAINED} at that depth and every shallower "
        "one; confirmed if BN trains deeper than no normalization",
    ),
    Claim(
        "Skip connections make deep (ReLU) BN networks trainable",
        "Yang et al. 2019; He et al. 2016",
        ("depth",),
        claim_skips_rescue_bn,
        "depth.png",
        f"trained as above (>= {TRAINED}); confirmed if BN + skips trains deeper than plain BN",
    ),
    Claim(
        "Per-channel BN helps a CNN",
        "Ioffe & Szegedy 2015; the blog post",
        ("cnn_bn_vs_nobn",),
        claim_cnn,
        "cnn_bn_vs_nobn.png",
    ),
]


def claims_ledger(dfs: dict[str, pd.DataFrame]) -> str:
    rows = []
    for claim in CLAIMS:
        missing = [e for e in claim.experiments if dfs.get(e) is None]
        if missing:
            measured, verdict = f"no runs yet ({', '.join(missing)})", "-"
        else:
            try:
                measured, verdict = claim.measure(dfs)
            except (KeyError, ValueError, IndexError) as exc:  # runs of another shape
                measured, verdict = f"cannot be measured from these runs ({exc})", "-"
        command = " ".join(f"`python run.py +experiment={e}`" for e in claim.experiments)
        figure = f"{claim.figure}; {command}"
        rows.append([claim.text, claim.source, f"**{verdict}**", measured, claim.rule, figure])
    header = ["claim", "source", "verdict here", "measured", "rule", "figure; command"]
    return markdown(header, rows)


# ----------------------------------------------------------------------------- the page


def config_reference() -> str:
    """Every config key with its default and meaning, from the schema (bnlab.config)."""
    keep = set(non_result_keys())
    rows = [
        [
            f"`{k}`",
            f"`{d}`" if d is not None else "`null`",
            text + (" (does not change results)" if k in keep else ""),
        ]
        for k, d, text in reference()
    ]
    return markdown(["key", "default", "meaning"], rows)


def heading(name: str, df: pd.DataFrame) -> str:
    codes = "; ".join(sorted(set(df["code"])))
    return f"`python run.py +experiment={name}` ({df['run'].nunique()} runs; data from {codes})\n\n"


def write_report(page: Path, outputs: Path) -> list[str]:
    """Rewrite every block of ``page`` from ``outputs``; returns what was done, a line each."""
    frames: dict[str, Optional[pd.DataFrame]] = {}

    def runs(name: str) -> Optional[pd.DataFrame]:
        if name not in frames:
            df = load_runs(outputs / name) if (outputs / name).is_dir() else None
            frames[name] = None if df is None or df.empty else df
        return frames[name]

    done = []

    def replace(match: re.Match) -> str:
        start, name, old, end = match.groups()
        if name == "config":
            done.append("config: reference table written from the schema")
            return f"{start}{config_reference()}\n{end}"
        if name == "claims":
            for claim in CLAIMS:
                for experiment in claim.experiments:
                    runs(experiment)
            done.append("claims: ledger written")
            return f"{start}{claims_ledger(frames)}\n{end}"
        df = runs(name)
        if df is None or name not in TABLES:
            done.append(f"{name}: no runs under {outputs / name}; block kept as it was")
            return match.group(0)
        done.append(f"{name}: table written from {df['run'].nunique()} runs")
        return f"{start}{heading(name, df)}{TABLES[name](df)}\n{end}"

    page.write_text(BLOCK.sub(replace, page.read_text()))
    return [f"{page}: {line}" for line in done]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlab.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pages", nargs="*", type=Path, default=PAGES)
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args(argv)
    for page in args.pages:
        if not page.is_file():
            print(f"bnlab: error: {page} not found (run from bnlab's folder)", file=sys.stderr)
            return 2
        for line in write_report(page, args.outputs):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
