"""Loading run folders into pandas and aggregating over seeds, against known values."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnlab.results.analysis import (
    compare,
    curves,
    final_values,
    load_runs,
    mean_interval,
    runs_table,
    steps_to_reach,
    varying_keys,
)


def _fake_run(folder, kind, seed, accs, status="completed"):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        f"seed: {seed}\nnorm:\n  kind: {kind}\n  eps: 1.0e-05\nmodel:\n  hidden: [4, 4]\n"
    )
    rows = ["step,split,metric,value"]
    for step, acc in zip((0, 10, 20), accs):
        rows += [
            f"{step},val,accuracy,{acc}",
            f"{step},val,loss,{1 - acc}",
            f"{step},test,accuracy,{acc - 0.01}",
        ]
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "summary.json").write_text(json.dumps({"status": status}))


@pytest.fixture
def fake_sweep(tmp_path):
    _fake_run(tmp_path / "a", "bn", 0, [0.1, 0.80, 0.90])
    _fake_run(tmp_path / "b", "bn", 1, [0.1, 0.70, 0.86])
    _fake_run(tmp_path / "c", "none", 0, [0.1, 0.50, 0.70])
    _fake_run(tmp_path / "d", "none", 1, [0.1, float("nan"), float("nan")], status="diverged")
    return tmp_path


def test_load_runs_joins_config_and_status(fake_sweep):
    df = load_runs(fake_sweep)
    assert len(df) == 4 * 9
    runs = runs_table(df).set_index("run")
    assert runs.loc["d", "status"] == "diverged" and runs.loc["a", "norm.kind"] == "bn"
    assert runs.loc["a", "model.hidden"] == "[4, 4]"
    assert varying_keys(df) == ["norm.kind"]


def test_curves_mean_and_t_interval(fake_sweep):
    c = curves(load_runs(fake_sweep), "val", "accuracy", by=["norm.kind"]).set_index(
        ["norm.kind", "step"]
    )
    row = c.loc[("bn", 20)]
    assert row["mean"] == pytest.approx(0.88) and row["n"] == 2
    half = stats.t.ppf(0.975, 1) * np.std([0.90, 0.86], ddof=1) / math.sqrt(2)
    assert row["hi"] - row["mean"] == pytest.approx(half)
    assert c.loc[("none", 20), "n"] == 1  # the diverged seed's NaN does not count
    assert math.isnan(c.loc[("none", 20), "hi"])


def test_final_values_and_steps_to_reach(fake_sweep):
    df = load_runs(fake_sweep)
    assert final_values(df, "val", "accuracy")["a"] == pytest.approx(0.90)
    reached = steps_to_reach(df, 0.75)
    assert reached["a"] == 10 and reached["b"] == 20 and math.isnan(reached["c"])


def test_compare_per_variant(fake_sweep):
    table = compare(load_runs(fake_sweep), target=0.75).set_index("norm.kind")
    assert table.loc["bn", "val_accuracy_mean"] == pytest.approx(0.88)
    assert table.loc["bn", "val_accuracy_std"] == pytest.approx(np.std([0.9, 0.86], ddof=1))
    assert table.loc["bn", "steps_to_target_mean"] == 15
    assert table.loc["none", "diverged"] == 1 and table.loc["none", "reached_target"] == "0/2"


def test_mean_interval_edge_cases():
    assert mean_interval([])[2] == 0
    mean, half, n = mean_interval([2.0])
    assert mean == 2.0 and math.isnan(half) and n == 1


def test_real_smoke_sweep_aggregates_the_raw_files(smoke_sweep):
    df = load_runs(smoke_sweep)
    assert set(runs_table(df)["status"]) == {"completed"}
    c = curves(df, "val", "loss", by=["norm.kind"]).set_index(["norm.kind", "step"])
    for kind in ("none", "bn"):
        raw = [pd.read_csv(smoke_sweep / f"norm={kind},seed={s}" / "metrics.csv") for s in (0, 1)]
        values = [
            r[(r.split == "val") & (r.metric == "loss") & (r.step == 120)].value.item() for r in raw
        ]
        assert c.loc[(kind, 120), "mean"] == pytest.approx(np.mean(values))


def test_compare_leaves_diverged_runs_out_of_the_means(fake_sweep):
    (fake_sweep / "c" / "summary.json").write_text(json.dumps({"status": "diverged"}))
    table = compare(load_runs(fake_sweep), target=0.75).set_index("norm.kind")
    assert table.loc["none", "diverged"] == 2
    assert math.isnan(table.loc["none", "val_accuracy_mean"])  # no healthy seed left
    assert table.loc["none", "seeds"] == 2


def test_pivot_final_ranks_sweep_cells(fake_sweep):
    from bnlab.results.analysis import pivot_final

    pivot = pivot_final(load_runs(fake_sweep), "val", "accuracy", index="norm.kind")
    assert pivot.loc["bn", "value"] == pytest.approx(0.88)
    assert pivot.loc["none", "value"] == pytest.approx(0.70)  # the diverged seed left out
    counts = pivot_final(load_runs(fake_sweep), "val", "accuracy", "norm.kind", stat="count")
    assert counts.loc["bn", "value"] == 2 and counts.loc["none", "value"] == 1


def test_run_configs_read_as_omegaconf_reads_them(tmp_path):
    """read_config (libyaml) gives what OmegaConf.load + to_container give, types included:
    1e-5 and 1.0e-05 are floats, lists stay lists, null is None, a date-like string a string."""
    from omegaconf import OmegaConf

    from bnlab.job.folder import read_config

    tree = {
        "norm": {"kind": "bn", "eps": 1e-5, "momentum": 0.1},
        "optimizer": {"lr": 1.0, "lr_grid": [0.01, 0.1, 1.0], "weight_decay": 0},
        "model": {"hidden": [100, 100], "channels": None},
        "name": "2026-11-30",
        "flags": [True, False],
    }
    path = tmp_path / "config.yaml"
    text = OmegaConf.to_yaml(OmegaConf.create(tree)) + "extra: 1e-8\nfloaty: .5\nwhen: 2026-11-30\n"
    path.write_text(text)
    expected = OmegaConf.to_container(OmegaConf.load(path))
    got = read_config(path)
    assert got == expected and repr(got) == repr(expected)
    assert isinstance(got["extra"], float) and got["when"] == "2026-11-30"  # not a date
