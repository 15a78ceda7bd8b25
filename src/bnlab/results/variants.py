"""The variants runs are compared by, named once.

A run's variant is its normalization as set up: ``norm.kind``, with noise (``norm.noise`` >
0: noisy BN), without gamma and beta (``norm.affine=false``), in a network with skip
connections (``model.residual``); a ResNet without normalization whose blocks start near the
identity is named by its rule (``model.residual_init``: ``skipinit``, ``fixup``). Each
variant has a *name*, used in results tables and to select runs in claims (``bn``,
``bn (noisy)``, ``bn + skips``), and a *label* and a colour for figures and the depth table
(``BN``, ``noisy BN``, ``BN + skips``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    colour: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("none", "no normalization", "tab:blue"),
        Variant("bn", "BN", "tab:red"),
        Variant("bn (noisy)", "noisy BN", "tab:orange"),
        Variant("bn (no gamma/beta)", "standardize only", "tab:gray"),
        Variant("batch_renorm", "Batch Renorm", "tab:purple"),
        Variant("layer", "LayerNorm", "tab:green"),
        Variant("group", "GroupNorm", "tab:olive"),
        Variant("torch", "nn.BatchNorm", "tab:brown"),
        Variant("none + skips", "no normalization + skips", "tab:cyan"),
        Variant("bn + skips", "BN + skips", "tab:pink"),
        Variant("skipinit", "SkipInit (no norm)", "darkgoldenrod"),
        Variant("fixup", "Fixup (no norm)", "teal"),
    )
}


def variant(df: pd.DataFrame) -> pd.Series:
    """Each row's variant name: norm.kind, then " (noisy)", " (no gamma/beta)", " + skips" as
    its config says, or model.residual_init where it is set (a column that is missing counts
    as the default)."""
    name = df["norm.kind"].astype(str)

    def column(key: str, default) -> pd.Series:  # runs older than a key have its default
        values = df[key] if key in df else pd.Series(default, index=df.index)
        return values.where(values.notna(), default)

    name = name.where(column("norm.noise", 0.0).astype(float) == 0, name + " (noisy)")
    name = name.where(column("norm.affine", True).astype(bool), name + " (no gamma/beta)")
    name = name.where(~column("model.residual", False).astype(bool), name + " + skips")
    init = column("model.residual_init", "none").astype(str)
    return name.where(init == "none", init)


def label(name: str) -> str:
    """A variant's label in figures (its name where the table has none)."""
    return VARIANTS[name].label if name in VARIANTS else name


def colour(name: str) -> str:
    return VARIANTS[name].colour if name in VARIANTS else "tab:gray"


def label_and_colour(name: str) -> tuple[str, str]:
    return label(name), colour(name)


def styles(names) -> dict[str, tuple[str, str]]:
    """name -> (label, colour) for the given variant names, in that order."""
    return {n: label_and_colour(n) for n in names}
