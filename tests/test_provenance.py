"""Results know their code: every run records the commit and a hash of the uncommitted changes
to src/ and conf/; a finished run made by other code warns when met again, rerun=true
trains it again."""

import json
import subprocess

import pytest
from conftest import ROOT, make_config

from bnlab.job.provenance import code_state, describe
from bnlab.training.train import run_job

NOW = code_state()
needs_git = pytest.mark.skipif(NOW["code_version"] is None, reason="bnlab is not in a git checkout")


@needs_git
def test_a_run_records_the_code_that_made_it(tmp_path, smoke_overrides):
    [summary] = run_job(make_config(*smoke_overrides, "trainer.steps=20"), tmp_path / "run")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert summary["git_commit"] == head.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "conf"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert summary["git_dirty"] == bool(dirty)
    assert (summary["code_changes"] is not None) == bool(dirty)
    assert summary["code_version"] == NOW["code_version"]


@needs_git
def test_finished_results_of_other_code_warn_once_and_rerun_trains_again(
    tmp_path, smoke_overrides, caplog
):
    cfg = make_config(*smoke_overrides, "trainer.steps=40", "trainer.eval_every=20")
    folder = tmp_path / "run"
    [first] = run_job(cfg, folder)
    rows = (folder / "metrics.csv").read_text()
    made_by = {"git_commit": "0" * 40, "code_changes": "abcdef123456", "code_version": "0" * 12}
    path = folder / "summary.json"
    path.write_text(json.dumps({**first, **made_by}))  # as if older code had made it

    with caplog.at_level("INFO"):
        [again] = run_job(cfg, folder)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "commit 0000000 + changes abcdef123456" in warnings[0]
    assert describe(NOW) in warnings[0] and "rerun=true" in warnings[0]
    assert again["code_version"] == "0" * 12  # kept as they are, not trained again
    assert (folder / "metrics.csv").read_text() == rows

    caplog.clear()
    [rerun] = run_job(
        make_config(*smoke_overrides, "trainer.steps=40", "trainer.eval_every=20", "rerun=true"),
        folder,
    )
    assert rerun["code_version"] == NOW["code_version"] and rerun["resumes"] == 0
    assert (folder / "metrics.csv").read_text() == rows  # same config, same code: same numbers
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@needs_git
def test_results_of_this_code_are_reused_silently(tmp_path, smoke_overrides, caplog):
    cfg = make_config(*smoke_overrides, "trainer.steps=20")
    run_job(cfg, tmp_path / "run")
    with caplog.at_level("INFO"):
        run_job(cfg, tmp_path / "run")
    assert "already finished" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@needs_git
def test_a_job_resumed_with_other_code_records_both(tmp_path, smoke_overrides, caplog):
    import torch

    from bnlab.job.checkpoint import load_checkpoint, save_checkpoint

    cfg = make_config(*smoke_overrides, "trainer.steps=40", "trainer.eval_every=20")
    folder = tmp_path / "run"
    run_job(cfg, folder)
    state = load_checkpoint(folder)  # as if an older commit had trained it and been stopped
    state["code_history"] = ["commit 0000000"]
    save_checkpoint(folder, {k: v for k, v in state.items() if k != "format"})
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["code_history"]
    with caplog.at_level("WARNING"):
        [resumed] = run_job(cfg, folder)
    assert "resumed with other code: trained so far by commit 0000000" in caplog.text
    assert resumed["code_history"] == ["commit 0000000", describe(NOW)]
    assert resumed["code_version"] is None and resumed["status"] == "completed"
    caplog.clear()
    with caplog.at_level("WARNING"):
        run_job(cfg, folder)  # finished, but no single version made it: it warns
    assert f"came from commit 0000000 then {describe(NOW)}" in caplog.text
