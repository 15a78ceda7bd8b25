"""Load run folders into pandas and compare variants across seeds.

A *run folder* is any folder holding ``metrics.csv`` and ``config.yaml`` (a single run, one job
of a sweep, or one seed of a replica-batched job). :func:`load_runs` finds every one under a
root and returns one long DataFrame: the metrics rows joined with the run's flattened config
(``norm.kind``, ``norm.eps``, ``seed``, ...), its ``status`` from summary.json, ``code`` (the
commit that made it, see :func:`bnlab.job.provenance.describe`), and ``run``, the folder relative
to the root. Failed and diverged runs stay in the frame with their status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from bnlab.config.schema import flatten
from bnlab.job.folder import NON_RESULT_KEYS, read_config
from bnlab.job.provenance import describe

# Not swept knobs: seeds are what we average over; code is the data's provenance.
IGNORED_KEYS = NON_RESULT_KEYS | {"seed", "code"}


def find_runs(root: Path) -> list[Path]:
    """Every run folder under ``root`` (``root`` itself included), sorted; none inside a
    hidden folder (a data-parallel worker's scratch ``.rank<r>/``, Hydra's ``.submitit/``)."""
    root = Path(root)
    return sorted(
        p.parent
        for p in root.rglob("metrics.csv")
        if (p.parent / "config.yaml").exists()
        and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])
    )


def read_run(run_dir: Path) -> tuple[dict, dict]:
    """(flattened config, summary) of one run folder; summary is {} if it has none yet."""
    tree = read_config(run_dir / "config.yaml")
    config = {k: str(v) if isinstance(v, list) else v for k, v in flatten(tree).items()}
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return config, summary


def load_runs(root: Path | str) -> pd.DataFrame:
    """All metrics under ``root`` joined with each run's config and status (long format)."""
    root = Path(root)
    frames, infos = [], []
    for run_dir in find_runs(root):
        config, summary = read_run(run_dir)
        metrics = pd.read_csv(run_dir / "metrics.csv")
        name = str(run_dir.relative_to(root)) if run_dir != root else "."
        info = {
            "run": name,
            "status": summary.get("status", "unknown"),
            "code": describe(summary),
            **config,
        }
        metrics["run"] = name
        frames.append(metrics)
        infos.append(info)
    if not frames:
        return pd.DataFrame(columns=["run", "status", "step", "split", "metric", "value"])
    runs = pd.DataFrame(infos)
    metrics = pd.concat(frames, ignore_index=True)
    return metrics.merge(runs, on="run", how="left")


def runs_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its config columns and status (the metrics dropped)."""
    cols = [c for c in df.columns if c not in ("step", "split", "metric", "value")]
    return df[cols].drop_duplicates("run").reset_index(drop=True)


def varying_keys(df: pd.DataFrame, ignore: Iterable[str] = IGNORED_KEYS) -> list[str]:
    """Config keys whose value differs between runs: the swept knobs (seed excluded)."""
    runs = runs_table(df)
    skip = set(ignore) | {"run", "status"}
    return [c for c in runs.columns if c not in skip and runs[c].astype(str).nunique() > 1]


def summary(rows: pd.DataFrame, column: str = "value") -> tuple[float, float, int, int]:
    """The statistic over seeds used everywhere: (mean, std, seeds averaged, diverged) of
    ``rows[column]``, mean and std (ddof=1; NaN for one seed) over the runs that did not
    diverge (a diverged run's last value comes from before it diverged: no final result),
    and how many did."""
    healthy = rows[rows["status"] != "diverged"][column].astype(float).dropna()
    std = healthy.std(ddof=1) if len(healthy) > 1 else float("nan")
    return healthy.mean(), std, len(healthy), int((rows["status"] == "diverged").sum())


def final_values(df: pd.DataFrame, split: str, metric: str) -> pd.Series:
    """The value at each run's last recorded step for (split, metric), indexed by run."""
    sel = df[(df["split"] == split) & (df["metric"] == metric)]
    return sel.sort_values("step").groupby("run")["value"].last()


def final_table(df: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """One row per run: its config, status and the final ``split/metric`` as ``value``."""
    runs = runs_table(df).set_index("run")
    return runs.join(final_values(df, split, metric).rename("value")).reset_index()


def pivot_final(
    df: pd.DataFrame,
    split: str,
    metric: str,
    index: str | Sequence[str],
    columns: str | Sequence[str] | None = None,
    stat: str = "mean",
) -> pd.DataFrame:
    """A sweep's cells side by side: ``stat`` over seeds of the final ``split/metric``, with
    ``index`` (and ``columns``) among the swept keys; diverged runs left out, so a cell whose
    seeds all diverged is NaN. Sort a column to rank the cells."""
    table = final_table(df, split, metric)
    table = table[table["status"] != "diverged"]
    return table.pivot_table(index=index, columns=columns, values="value", aggfunc=stat)


def steps_to_reach(
    df: pd.DataFrame, target: float, split: str = "val", metric: str = "accuracy"
) -> pd.Series:
    """The first step at which each run's (split, metric) reached ``target`` (NaN if never)."""
    sel = df[(df["split"] == split) & (df["metric"] == metric)].sort_values("step")
    reached = sel[sel["value"] >= target].groupby("run")["step"].first()
    return reached.reindex(sel["run"].unique())


def mean_interval(values, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the Student-t ``level`` interval, n) over the finite values.

    The half-width is NaN for fewer than two values: one seed gives no interval.
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    if len(v) == 1:
        return float(v[0]), float("nan"), 1
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half), len(v)


def curves(
    df: pd.DataFrame, split: str, metric: str, by: Sequence[str] = (), level: float = 0.95
) -> pd.DataFrame:
    """Per step (and per group of ``by``): mean over runs and its ``level`` interval.

    Columns: ``*by, step, mean, lo, hi, n``. Only runs that recorded the step count, so a
    diverged run stops contributing where its record stops (``n`` says how many did).
    """
    sel = df[(df["split"] == split) & (df["metric"] == metric)]
    keys = [*by, "step"]
    rows = []
    for key, group in sel.groupby(keys, sort=True):
        mean, half, n = mean_interval(group["value"], level)
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {**dict(zip(keys, key)), "mean": mean, "lo": mean - half, "hi": mean + half, "n": n}
        )
    return pd.DataFrame(rows, columns=[*keys, "mean", "lo", "hi", "n"])


def compare(df: pd.DataFrame, target: float, by: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per variant: mean +/- std over seeds of final val loss/accuracy and test accuracy, and
    the steps to reach ``target`` validation accuracy (mean over the seeds that reached it;
    NaN, "not measured", for runs whose ``trainer.eval_splits`` leave validation to the end).

    Diverged runs are counted (``diverged``) but left out of the means: their last recorded
    values come from before they diverged and are not final results.
    """
    by = list(by) if by is not None else varying_keys(df)
    runs = runs_table(df).set_index("run")
    columns = {
        "val_loss": final_values(df, "val", "loss"),
        "val_accuracy": final_values(df, "val", "accuracy"),
        "test_accuracy": final_values(df, "test", "accuracy"),
        "steps_to_target": steps_to_reach(df, target),
    }
    per_run = runs.join(pd.DataFrame(columns))
    splits = per_run.get("trainer.eval_splits", pd.Series("['val']", index=per_run.index))
    val_measured = splits.astype(str).str.contains("val")
    per_run.loc[~val_measured, "steps_to_target"] = float("nan")
    groups = per_run.groupby(by, dropna=False, sort=True) if by else [((), per_run)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["seeds"] = len(group)
        row["completed"] = int((group["status"] == "completed").sum())
        row["diverged"] = int((group["status"] == "diverged").sum())
        healthy = group[group["status"] != "diverged"]
        for name in ("val_loss", "val_accuracy", "test_accuracy"):
            row[f"{name}_mean"], row[f"{name}_std"], _, _ = summary(group, name)
        reached = healthy["steps_to_target"].dropna()
        measured = val_measured[group.index].all()
        row["reached_target"] = f"{len(reached)}/{len(group)}" if measured else "not measured"
        row["steps_to_target_mean"] = reached.mean() if len(reached) else float("nan")
        row["code"] = ", ".join(sorted(set(group["code"])))
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame, target: float) -> str:
    """The comparison as an aligned text table with mean +/- std cells."""
    if table.empty:
        return "(no runs)"
    keys = [
        c
        for c in table.columns
        if not any(
            c.startswith(p)
            for p in (
                "val_",
                "test_",
                "steps_",
                "seeds",
                "completed",
                "diverged",
                "reached",
                "code",
            )
        )
    ]
    out = table[keys].copy()
    out["seeds"] = table["seeds"]
    for name, label, digits in (
        ("val_loss", "val loss", 4),
        ("val_accuracy", "val acc", 4),
        ("test_accuracy", "test acc", 4),
    ):
        out[label] = [
            _pm(m, s, digits) for m, s in zip(table[f"{name}_mean"], table[f"{name}_std"])
        ]
    out[f"steps to val acc {target:g}"] = [
        f"{m:.0f} ({r})" if np.isfinite(m) else f"never ({r})"
        for m, r in zip(table["steps_to_target_mean"], table["reached_target"])
    ]
    if table["diverged"].any():
        out["diverged"] = table["diverged"]
    codes = sorted({c for cell in table["code"] for c in cell.split(", ")})
    return out.to_string(index=False) + f"\n(data from {'; '.join(codes)})"


def _pm(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "nan"
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +/- {std:.{digits}f}"
