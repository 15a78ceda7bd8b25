"""Experiments run in-process (bnlab.launch) and the one-process figure suite (bnlab.suite)."""

import json
from pathlib import Path

import pytest
from conftest import CONF, run_cli

from bnlab import catalog
from bnlab.launch import run_experiment
from bnlab.suite import main as suite_main

TINY = [
    "hydra/launcher=joblib",
    "dataset.synthetic_train=1200",
    "dataset.val_size=200",
    "trainer.steps=40",
    "trainer.eval_every=20",
    "trainer.log_every=20",
]


def _jobs(root: Path) -> dict[str, Path]:
    sweep = root / "outputs" / "smoke"
    return {p.name: p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")}


@pytest.mark.slow
def test_an_experiment_run_in_process_equals_run_py(tmp_path, monkeypatch):
    cli, here = tmp_path / "cli", tmp_path / "here"
    for root in (cli, here):
        root.mkdir()
    args = [*TINY, "norm=none,bn", "data_dir=data"]
    proc = run_cli("-m", "+experiment=smoke", *args, cwd=cli)
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.chdir(here)
    warm = ["hydra.mode=MULTIRUN", *TINY, "norm=layer,none", "optimizer.lr=0.3", "data_dir=data"]
    assert run_experiment("smoke", warm, conf=CONF) == 0  # the workers serve another sweep first
    assert run_experiment("smoke", ["hydra.mode=MULTIRUN", *args], conf=CONF) == 0
    a, b = _jobs(cli), _jobs(here)
    assert len(a) == 2 and set(a) < set(b) and len(b) == 4  # the same folders, and the others
    for name in a:
        summary = json.loads((b[name] / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["threads"] == 1  # joblib's share
        assert summary["began_at"] <= summary["started_at"] < summary["finished_at"]
        assert (a[name] / "metrics.csv").read_bytes() == (b[name] / "metrics.csv").read_bytes()
    assert (here / "outputs" / "smoke" / "comparison.csv").is_file()
    # a second call finds the finished runs and trains nothing
    before = {n: (b[n] / "summary.json").stat().st_mtime_ns for n in a}
    assert run_experiment("smoke", ["hydra.mode=MULTIRUN", *args], conf=CONF) == 0
    assert {n: (b[n] / "summary.json").stat().st_mtime_ns for n in a} == before


@pytest.mark.slow
def test_a_refused_cell_returns_2_and_the_others_run(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    args = ["hydra.mode=MULTIRUN", *TINY, "optimizer.lr=0.1,-1", "data_dir=data"]
    assert run_experiment("smoke", args, conf=CONF) == 2
    err = capfd.readouterr().err  # the workers' stderr too
    assert "optimizer.lr must be > 0 (got -1.0)" in err and "Traceback" not in err
    statuses = [
        json.loads((p / "summary.json").read_text())["status"] for p in _jobs(tmp_path).values()
    ]
    assert statuses == ["completed"]


def test_an_unknown_experiment_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_experiment("no_such_experiment", conf=CONF) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bnlab: error: no_such_experiment: ")
    assert "experiment" in err[0] and "Traceback" not in err[0]


def test_the_suite_names_failed_scripts_and_draws_the_others(tmp_path, monkeypatch, capsys):
    scripts = tmp_path / "experiments"
    scripts.mkdir()
    (scripts / "a_fails.py").write_text("def draw(out):\n    raise SystemExit(2)\n")
    (scripts / "b_draws.py").write_text(
        "from pathlib import Path\ndef draw(out):\n    Path('drawn.txt').write_text(str(out))\n"
    )
    (tmp_path / "run.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert suite_main(["--fast"]) == 1
    assert (tmp_path / "drawn.txt").read_text() == "outputs/figures/fast"  # the second drew
    out, err = capsys.readouterr()
    assert "== experiments/a_fails.py" in out and "== experiments/b_draws.py" in out
    assert err.strip() == "bnlab: error: figures not drawn: a_fails"


def test_the_suite_runs_the_named_experiments_in_that_order_and_refuses_unknown_names():
    root = Path(__file__).resolve().parents[1]
    assert [e.name for e in catalog.named(["depth", "bn_vs_nobn"], root)] == [
        "depth",
        "bn_vs_nobn",
    ]
    with pytest.raises(SystemExit, match="no experiment nope"):
        catalog.named(["nope"], root)


def test_a_script_that_raises_is_one_line_and_the_suite_goes_on(tmp_path, monkeypatch, capsys):
    scripts = tmp_path / "experiments"
    scripts.mkdir()
    (scripts / "a_raises.py").write_text("def draw(out):\n    raise ValueError('bad data')\n")
    (scripts / "b_draws.py").write_text("def draw(out):\n    pass\n")
    (tmp_path / "run.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert suite_main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bnlab: error: a_raises.py: ValueError: bad data",
        "bnlab: error: figures not drawn: a_raises",
    ]


@pytest.mark.slow
def test_an_experiment_run_in_the_background_is_waited_for_not_run_twice(tmp_path, monkeypatch):
    import bnlab.launch
    import bnlab.task

    monkeypatch.chdir(tmp_path)
    calls = []
    real = bnlab.task.train_task
    monkeypatch.setattr(bnlab.task, "train_task", lambda cfg: calls.append(1) or real(cfg))
    with bnlab.launch.trained_in_background(["smoke"], conf=CONF) as background:
        assert run_experiment("smoke", conf=CONF) == 0  # waits for the background's run
    assert not background.thread.is_alive() and bnlab.launch._background is None
    assert calls == [1]
    (summary,) = (tmp_path / "outputs" / "smoke").rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"


def test_after_an_interrupted_experiment_the_background_starts_no_other(monkeypatch):
    import bnlab.launch

    statuses = {"first": 130, "second": 0}
    ran = []
    monkeypatch.setattr(bnlab.launch, "_run", lambda name, *a: ran.append(name) or statuses[name])
    with bnlab.launch.trained_in_background(["first", "second"]) as background:
        assert run_experiment("first") == 130
        assert run_experiment("second") == 130  # never started: as interrupted
    assert ran == ["first"] and background.stop.is_set()
