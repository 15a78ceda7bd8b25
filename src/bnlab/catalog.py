"""Where the experiments are: :func:`experiments` finds them, for the suite, bench, report and
tests alike.

An experiment named X is, under the project's folder:

* ``conf/experiment/X.yaml``: its config (``python run.py +experiment=X``), and
  ``conf/experiment/X_fast.yaml``, the same on a small budget (``make figures FAST=1``);
  where X's full budget is sized for a GPU (hours on a CPU), ``conf/experiment/X_cpu.yaml``
  is the budget a CPU runs in minutes (``make figures BUDGET=cpu``), and X is *GPU-scale*;
* ``experiments/X.py``: ``draw(df, out)`` its figures from the runs and ``main(argv)`` to run
  it and draw them; and, where it has them, ``TABLE`` (runs -> its Markdown table in
  docs/results.md, e.g. a :class:`bnlab.results.tables.Table`), ``CLAIMS`` (a list of
  :class:`bnlab.results.claims.Claim`) and ``ORDER`` (where its claims stand in the ledger).

A module of experiments/ without a config draws from theory alone (no runs). Adding an
experiment is adding those files.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

MODULES = Path("experiments")
CONFIGS = Path("conf") / "experiment"
LAST = 1000  # the ledger position of an experiment that states none
BUDGETS = ("full", "cpu", "fast")  # the configs X, X_cpu (GPU-scale X only; else X), X_fast


@dataclass(frozen=True)
class Experiment:
    """One experiment: its name and its module's file; ``trains``: it has a config (runs);
    ``gpu_scale``: its full budget is sized for a GPU, and it has a CPU budget."""

    name: str
    path: Path
    trains: bool
    gpu_scale: bool = False

    def config(self, budget: str) -> str:
        """The config that runs it at ``budget`` (one of BUDGETS): X, X_cpu or X_fast."""
        if budget == "fast":
            return f"{self.name}_fast"
        return f"{self.name}_cpu" if budget == "cpu" and self.gpu_scale else self.name

    @property
    def module(self) -> ModuleType:
        return load_module(self.path.resolve())

    @property
    def table(self):
        return getattr(self.module, "TABLE", None)

    @property
    def claims(self) -> list:
        return list(getattr(self.module, "CLAIMS", []))

    @property
    def order(self) -> int:
        return getattr(self.module, "ORDER", LAST)


@cache
def load_module(path: Path) -> ModuleType:
    """The experiment module at ``path``, imported once per process."""
    spec = importlib.util.spec_from_file_location(f"bnlab_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def experiments(root: Path = Path(".")) -> list[Experiment]:
    """Every experiment under ``root`` (a module in experiments/; it trains if
    conf/experiment/ has its config and its fast overlay), in name order."""
    configs = root / CONFIGS

    def has(name: str, *suffixes: str) -> bool:
        return all((configs / f"{name}{suffix}.yaml").is_file() for suffix in suffixes)

    return [
        Experiment(p.stem, p, has(p.stem, "", "_fast"), has(p.stem, "", "_fast", "_cpu"))
        for p in sorted((root / MODULES).glob("*.py"))
    ]


def named(names: list[str], root: Path = Path(".")) -> list[Experiment]:
    """The experiments called ``names`` (all when empty); an unknown name is a one-line error."""
    known = {e.name: e for e in experiments(root)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"bnlab: error: no experiment {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [known[n] for n in names] if names else list(known.values())


def claims(root: Path = Path(".")) -> list[tuple[str, object]]:
    """(experiment, claim) for every claim, in ledger order: by the experiments' ``ORDER``,
    then as each lists them."""
    ordered = sorted(experiments(root), key=lambda e: (e.order, e.name))
    return [(e.name, claim) for e in ordered for claim in e.claims]
