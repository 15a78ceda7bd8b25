"""`make report` writes docs/results.md's tables from real run folders, and docs/reference.md's
key table from the schema; both committed pages are what it writes."""

import shutil

import pandas as pd
from conftest import ROOT

from bnlab import catalog
from bnlab.config.reference import reference
from bnlab.config.schema import Config
from bnlab.job.provenance import code_state, describe
from bnlab.results.report import main

PAGE = """# a page
<!-- report: claims -->
<!-- /report -->
text kept
<!-- report: bn_vs_nobn -->
old table
<!-- /report -->
<!-- report: eps_sweep -->
eps table from earlier runs
<!-- /report -->
"""


def test_report_writes_tables_from_a_real_sweep(smoke_sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    outputs = tmp_path / "outputs"
    shutil.copytree(smoke_sweep, outputs / "bn_vs_nobn")
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    assert main([str(page), "--outputs", str(outputs)]) == 0  # the cwd: bnlab's folder
    text = page.read_text()
    assert "text kept" in text and "old table" not in text
    assert "eps table from earlier runs" in text  # no eps_sweep runs: the block stays
    assert "eps_sweep: no runs under" in capsys.readouterr().out
    assert (
        f"`python run.py +experiment=bn_vs_nobn` (4 runs; data from {describe(code_state())})"
        in text
    )
    # the BN row: mean +/- std over the 2 seeds of the final validation accuracy, from metrics.csv
    finals = []
    for seed in (0, 1):
        m = pd.read_csv(smoke_sweep / f"norm=bn,seed={seed}" / "metrics.csv")
        acc = m[(m.split == "val") & (m.metric == "accuracy")]
        finals.append(acc.sort_values("step").value.iloc[-1])
    expected = f"{pd.Series(finals).mean():.3f} +/- {pd.Series(finals).std(ddof=1):.3f}"
    bn_row = next(line for line in text.splitlines() if line.startswith("| bn | 2 |"))
    assert expected in bn_row
    ledger = text.split("<!-- report: claims -->")[1].split("<!-- /report -->")[0]
    rows = [line for line in ledger.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(catalog.claims(ROOT))
    faster = next(r for r in rows if r.startswith("| BN reaches a given accuracy"))
    assert any(
        v in faster for v in ("**confirmed**", "**contradicted**", "**not reproduced here**")
    )
    assert "no runs yet (lr_sweep)" in next(r for r in rows if "5x and 30x" in r)
    assert "within 0.02 of x1" in next(r for r in rows if "5x and 30x" in r)  # its rule


def test_every_table_and_the_ledger_have_their_block_in_the_committed_page():
    tables = [e.name for e in catalog.experiments(ROOT) if e.table is not None]
    assert "lr_sweep" in tables and "resnet_lr" in tables
    results = (ROOT / "docs" / "results.md").read_text()
    for name in ["claims", *tables]:
        assert f"<!-- report: {name} -->" in results, name


def test_the_committed_reference_lists_every_key_as_the_schema_states_it():
    text = (ROOT / "docs" / "reference.md").read_text()
    for key, default, meaning, allowed in reference(Config):
        shown = "null" if default is None else default
        assert f"| `{key}` | `{shown}` | {meaning}" in text, key
        assert text.split(f"| `{key}` |")[1].split("\n")[0].endswith(f"| {allowed} |"), key


def test_select_matches_numbers_as_numbers_and_null_as_missing():
    from bnlab.results.tables import select, shown

    df = pd.DataFrame({"a.b": [2.0, None, 3.0], "c": ["x", "y", "x"]})
    assert list(select(df, a__b=2).index) == [0]
    assert list(select(df, a__b=None).index) == [1]
    assert list(select(df, c="x", a__b=3).index) == [2]
    assert [shown(v) for v in (4.0, 0.5, float("nan"), "bn")] == ["4", "0.5", "null", "bn"]


def test_a_ledger_row_without_runs_here_is_kept_as_it_was(tmp_path, monkeypatch):
    """Runs made on another machine (a GPU's, an earlier session's) decided a row: a report
    run where those runs are absent keeps the row, and writes "no runs yet" only where the
    page had none."""
    monkeypatch.chdir(ROOT)
    claim = "With BN, 5x and 30x the learning rate still train"
    row = (
        f"| {claim} | Ioffe & Szegedy 2015 | **confirmed** | measured elsewhere | a rule | f.png |"
    )
    page = tmp_path / "results.md"
    header = (
        "| claim | source | verdict here | measured | rule | figure; command |\n|" + " --- |" * 6
    )
    page.write_text(f"<!-- report: claims -->\n{header}\n{row}\n<!-- /report -->\n")
    assert main([str(page), "--outputs", str(tmp_path / "outputs")]) == 0
    text = page.read_text()
    assert row in text
    assert "no runs yet (bn_vs_nobn)" in text and "no runs yet (lr_sweep)" not in text
