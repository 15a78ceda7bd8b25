"""Bad input on run.py's command line (an unknown experiment, option or key, a value of the wrong
type or outside its Enum) gets one line, ``bnlab: error: ...`` naming it and the valid choices,
and status 2; ``HYDRA_FULL_ERROR=1`` still gives Hydra's full output."""

import os
import runpy
import sys

import pytest
from conftest import ROOT, run_cli

# (command line, what the line must name: the bad input, then a valid choice)
BAD_INPUTS = [
    (["+experiment=nope"], "'nope'", "bn_vs_nobn"),
    (["-m", "+experiment=nope"], "'nope'", "batch_size_sweep"),
    (["dataset=imagenet"], "'imagenet'", "fashion_mnist"),
    (["norm=nonexistent"], "'nonexistent'", "batch_renorm"),
    (["-m", "norm=none,nonexistent"], "'nonexistent'", "bn_noisy"),
    (["trainer.stepz=10"], "trainer.stepz", "steps"),
    (["-m", "trainer.stepz=1,2"], "trainer.stepz", "batch_size"),
    (["nrm.eps=3"], "nrm", "norm"),
    (["norm.stats=foo"], "norm.stats=foo", "ema, population, batch"),
    (["-m", "norm.stats=ema,foo"], "norm.stats=foo", "population"),
    (["model.activation=swish2"], "model.activation=swish2", "sigmoid, relu, tanh"),
    (["-m", "model.activation=relu,swish2"], "model.activation=swish2", "tanh"),
    (["norm.eps=abc"], "norm.eps=abc", "a number"),
    (["+experiment=bn_vs_nobn_fast", "norm.eps=abc"], "norm.eps=abc", "a number"),
    (["trainer.steps=1.5"], "trainer.steps=1.5", "an integer"),
    (["trainer=foo"], "trainer=foo", "steps"),
]


def run_here(args: list[str], monkeypatch, capsys) -> tuple[int, list[str]]:
    """``python run.py <args>`` in this process (a subprocess costs ~3 s): exit status and the
    lines written to stderr."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "run.py"), *args])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    return stop.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("args,bad,choice", BAD_INPUTS, ids=lambda a: " ".join(a))
def test_bad_input_is_one_line_naming_it_and_the_choices(
    args, bad, choice, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # a sweep's multirun.yaml lands here
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    status, lines = run_here([*args, "name=bad"], monkeypatch, capsys)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("bnlab: error: ") and bad in lines[0] and choice in lines[0]
    assert "HYDRA_FULL_ERROR" not in os.environ  # set while Hydra composed, then unset
    assert not list(tmp_path.glob("outputs/*/*/"))  # no job folder


def test_the_lines_say_what_was_wrong_in_words(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    said = {
        "norm=nonexistent": "no norm 'nonexistent' (known: batch_renorm, bn, bn_no_affine, "
        "bn_noisy, fixup, group, layer, none, skipinit, torch)",
        "norm.stats=foo": "norm.stats=foo is not one of ema, population, batch",
        "norm.eps=abc": "norm.eps=abc is not a number",
        "trainer.epochs=x": "trainer.epochs=x is not a number or null",
        "model.hidden=abc": "model.hidden=abc is not a list of integers",
        "norm.affine=maybe": "norm.affine=maybe is not true or false",
    }
    for arg, line in said.items():
        assert run_here([arg], monkeypatch, capsys) == (2, [f"bnlab: error: {line}"])
    status, [line] = run_here(["trainer.stepz=10"], monkeypatch, capsys)
    assert line.startswith("bnlab: error: no key trainer.stepz (trainer's keys: steps, epochs, ")


@pytest.mark.parametrize("args", [["norm.stats=foo"], ["-m", "norm=none,nonexistent"]])
def test_run_py_prints_one_line_and_hydra_full_error_everything(args, tmp_path):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("bnlab: error: ")
    full = run_cli(*args, cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr
    assert len(full.stderr.splitlines()) > 10 and "bnlab: error" not in full.stderr
