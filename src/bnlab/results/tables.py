"""Results tables: one row per cell of a sweep, each value a mean over seeds.

Every value is the mean over the seeds that did not diverge with, after +/-, their standard
deviation (``ddof=1``), at the run's last evaluation unless the column says otherwise; diverged
runs are counted, not averaged (:func:`bnlab.results.analysis.summary`). An experiment's
module declares its table as a :class:`Table` (``TABLE = Table(by=[...], columns=[...])``);
``make report`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from bnlab.results.analysis import final_table, summary
from bnlab.results.variants import variant


def per_seed(df: pd.DataFrame, split: str, metric: str, late: bool = False) -> pd.DataFrame:
    """One row per run: its config, status and ``value``: the final value of split/metric, or
    with ``late`` its mean over the second half of training (steps >= the run's last / 2)."""
    if not late:
        return final_table(df, split, metric)
    sel = df[(df["split"] == split) & (df["metric"] == metric)]
    sel = sel[sel["step"] >= sel.groupby("run")["step"].transform("max") / 2]
    runs = final_table(df, split, metric).drop(columns="value").set_index("run")
    return runs.join(sel.groupby("run")["value"].mean()).reset_index()


def cell(rows: pd.DataFrame, digits: int = 3) -> str:
    """``mean +/- std`` of :func:`summary`, with how many seeds diverged where any did."""
    mean, std, n, diverged = summary(rows)
    if n == 0:
        return f"all {diverged} diverged" if diverged else "-"
    text = f"{mean:.{digits}f}" + (f" +/- {std:.{digits}f}" if np.isfinite(std) else "")
    return text + (f" ({diverged} of {n + diverged} diverged)" if diverged else "")


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows whose config keys (dots written as double underscores) equal the given values
    (numbers compared as numbers: 3 matches 3.0; None matches null)."""
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


def with_variant(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``variant`` column: each run's variant name
    (:func:`bnlab.results.variants.variant`)."""
    return df.assign(variant=variant(df))


def shown(value) -> str:
    """A key's value as written in a table: 4.0 as 4, NaN as null, other values as they are."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


@dataclass(frozen=True)
class Column:
    """A table column: the final ``split/metric`` (``late``: its mean over the second half)."""

    label: str
    split: str
    metric: str
    late: bool = False
    digits: int = 3


VAL = Column("val accuracy", "val", "accuracy")
TEST = Column("test accuracy", "test", "accuracy")
TRAIN_LOSS = Column("train loss (last window)", "train", "loss")
VAL_LOSS = Column("val loss", "val", "loss")
VAL_TRAINMODE = Column("val accuracy, batch statistics", "val", "accuracy_trainmode")


@dataclass(frozen=True)
class Table:
    """One row per value of the config keys ``by`` (``variant``: the normalization's name,
    :func:`variant`), in numeric order, then the number of seeds and one column per
    :class:`Column`."""

    by: Sequence[str]
    columns: Sequence[Column]

    def __call__(self, df: pd.DataFrame) -> str:
        by, columns = list(self.by), self.columns
        df = with_variant(df)
        values = {c.label: per_seed(df, c.split, c.metric, c.late) for c in columns}
        keys = df.drop_duplicates("run")[by].drop_duplicates()
        keys = keys.sort_values(by, key=lambda s: pd.to_numeric(s, errors="coerce").fillna(0))
        rows = []
        for _, key in keys.iterrows():
            where = {k.replace(".", "__"): key[k] for k in by}
            seeds = select(values[columns[0].label], **where)
            rows.append(
                [*map(shown, key), len(seeds)]
                + [cell(select(values[c.label], **where), c.digits) for c in columns]
            )
        return markdown([*by, "seeds", *(c.label for c in columns)], rows)
