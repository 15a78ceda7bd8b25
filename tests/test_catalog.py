"""An experiment is its config, its fast overlay and one module: adding those three files is
all it takes for the suite to run and draw it and the report to write its table and claims."""

import shutil
from pathlib import Path

from conftest import CONF, ROOT

from bnlab import catalog
from bnlab.results.report import main as report_main
from bnlab.suite import main as suite_main

TOY_CONFIG = """# @package _global_
defaults:
  - override /dataset: synthetic
name: toy
optimizer:
  lr: 0.5
trainer:
  steps: 40
  eval_every: 20
  log_every: 20
  progress: false
hydra:
  mode: MULTIRUN
  sweeper:
    params:
      norm: none,bn
"""
TOY_FAST = "# @package _global_\ndefaults:\n  - toy\n  - _self_\nname: toy_fast\n"
TOY_MODULE = '''"""A toy experiment: BN vs no BN for 40 steps."""
from pathlib import Path

from bnlab.results.claims import Claim, MoreByStd, side
from bnlab.results.tables import VAL, Table


def draw(df, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "toy.txt").write_text(str(sorted(set(df["norm.kind"]))))


ORDER = 0
TABLE = Table(["variant"], [VAL])
CLAIMS = [
    Claim(
        "The toy's BN beats no BN",
        "this test",
        "toy.txt",
        MoreByStd("val accuracy", side("BN", variant="bn"), side("no BN", variant="none")),
    )
]
'''
PAGE = "# toy\n<!-- report: claims -->\n<!-- /report -->\n<!-- report: toy -->\n<!-- /report -->\n"


def test_the_catalog_finds_every_experiment_of_the_project():
    found = {e.name: e for e in catalog.experiments(ROOT)}
    configs = {p.stem for p in (CONF / "experiment").glob("*_fast.yaml")}
    assert {n for n, e in found.items() if e.trains} == {c.removesuffix("_fast") for c in configs}
    assert not found["loss_surface"].trains  # drawn from theory alone
    cpu_budgets = {p.stem for p in (CONF / "experiment").glob("*_cpu.yaml")}
    assert {n for n, e in found.items() if e.gpu_scale} == {
        c.removesuffix("_cpu") for c in cpu_budgets
    }
    names = [name for name, _ in catalog.claims(ROOT)]
    assert len(names) == sum(len(e.claims) for e in found.values())
    orders = [found[name].order for name in names]
    assert names[:3] == ["bn_vs_nobn"] * 3 and orders == sorted(orders)  # the ledger's order


def test_a_toy_experiment_is_run_drawn_tabled_and_judged(tmp_path, monkeypatch, capsys):
    shutil.copytree(CONF, tmp_path / "conf")
    (tmp_path / "conf" / "experiment" / "toy.yaml").write_text(TOY_CONFIG)
    (tmp_path / "conf" / "experiment" / "toy_fast.yaml").write_text(TOY_FAST)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "toy.py").write_text(TOY_MODULE)
    (tmp_path / "run.py").write_text("")
    monkeypatch.chdir(tmp_path)

    assert [e.name for e in catalog.experiments(Path("."))] == ["toy"]
    assert suite_main(["toy"]) == 0
    assert (tmp_path / "outputs" / "figures" / "toy.txt").read_text() == "['bn', 'none']"
    assert len(list((tmp_path / "outputs" / "toy").rglob("metrics.csv"))) == 2

    page = tmp_path / "results.md"
    page.write_text(PAGE)
    assert report_main([str(page)]) == 0
    text = page.read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| The toy's BN beats")]
    assert "| this test |" in row and "val accuracy BN " in row
    assert any(f"**{v}**" in row for v in ("confirmed", "contradicted", "not reproduced here"))
    assert "`python run.py +experiment=toy` (2 runs;" in text
    assert "| bn | 1 |" in text and "| none | 1 |" in text
    assert "toy: table written from 2 runs" in capsys.readouterr().out


TOY_CPU = (
    "# @package _global_\ndefaults:\n  - toy\n  - _self_\nname: toy_cpu\ntrainer:\n  steps: 20\n"
)


def test_a_gpu_scale_experiment_is_skipped_on_a_cpu_run_at_its_cpu_budget_and_marked(
    tmp_path, monkeypatch, capsys
):
    """With <name>_cpu.yaml the toy is GPU-scale: without a GPU the suite skips its full
    budget with one line, runs its CPU budget when asked, and the report decides its claims
    from those runs, saying "not at full scale"; with GPU_SCALE=1 the full budget runs."""
    shutil.copytree(CONF, tmp_path / "conf")
    for name, text in (("toy", TOY_CONFIG), ("toy_fast", TOY_FAST), ("toy_cpu", TOY_CPU)):
        (tmp_path / "conf" / "experiment" / f"{name}.yaml").write_text(text)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "toy.py").write_text(TOY_MODULE)
    (tmp_path / "run.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPU_SCALE", raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    (toy,) = catalog.experiments(Path("."))
    assert toy.gpu_scale and [toy.config(b) for b in catalog.BUDGETS] == [
        "toy",
        "toy_cpu",
        "toy_fast",
    ]

    assert suite_main(["toy"]) == 0
    assert "toy: sized for a GPU (hours on this CPU): skipped" in capsys.readouterr().out
    assert not (tmp_path / "outputs" / "toy").exists()

    assert suite_main(["--budget", "cpu", "toy"]) == 0
    assert (tmp_path / "outputs" / "figures" / "cpu" / "toy.txt").is_file()
    summaries = list((tmp_path / "outputs" / "toy_cpu").rglob("summary.json"))
    assert len(summaries) == 2 and '"step": 20' in summaries[0].read_text()

    page = tmp_path / "results.md"
    page.write_text(PAGE)
    assert report_main([str(page)]) == 0
    text = page.read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| The toy's BN beats")]
    assert "** (not at full scale) |" in row and "`python run.py +experiment=toy_cpu`" in row
    assert "`python run.py +experiment=toy_cpu` (not at full scale, the CPU budget; 2 runs" in text

    monkeypatch.setenv("GPU_SCALE", "1")
    assert suite_main(["toy"]) == 0
    assert len(list((tmp_path / "outputs" / "toy").rglob("summary.json"))) == 2
    page.write_text(PAGE)
    assert report_main([str(page)]) == 0
    assert "not at full scale" not in page.read_text()
    monkeypatch.delenv("GPU_SCALE")
    capsys.readouterr()
    assert suite_main(["toy"]) == 0  # drawn from the runs a GPU machine would have made
    assert "skipped" not in capsys.readouterr().out


def test_an_experiment_without_its_fast_overlay_is_one_line(tmp_path, monkeypatch, capsys):
    shutil.copytree(CONF, tmp_path / "conf")
    (tmp_path / "conf" / "experiment" / "toy.yaml").write_text(TOY_CONFIG)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "toy.py").write_text(TOY_MODULE)
    (tmp_path / "run.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert suite_main(["toy"]) == 1
    out = capsys.readouterr()
    assert "bnlab: error: toy has no toy_fast.yaml" in out.out
    assert "Traceback" not in out.out + out.err
