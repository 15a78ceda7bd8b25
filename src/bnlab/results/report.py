"""``make report``: the numbers of docs/results.md, written from the run folders in outputs/.

docs/results.md (and docs/reference.md) is hand-written prose around generated blocks::

    <!-- report: lr_sweep -->
    ...written by this module...
    <!-- /report -->

Each block named after an experiment gets that experiment's ``TABLE`` (:mod:`bnlab.catalog`,
:mod:`bnlab.results.tables`), computed from ``outputs/<experiment>/`` and headed by the command that
made the data and the commit(s) of the code that made it. The block ``claims`` gets the claims
ledger (:mod:`bnlab.results.claims`): one row per claim of every experiment's ``CLAIMS``, with its
source, the measured numbers and a verdict decided by a stated rule from those numbers. A block
whose runs are not there is left as it was, and said so; so is a ledger row. A GPU-scale
experiment without full-budget runs is written from its CPU budget's runs
(``outputs/<experiment>_cpu/``), and its table and ledger rows say "not at full scale". The block
``config`` gets every config key with its default and meaning, from the schema.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from bnlab import catalog
from bnlab.config.reference import reference
from bnlab.config.schema import non_result_keys
from bnlab.results.analysis import load_runs
from bnlab.results.claims import NOT_FULL_SCALE, ledger
from bnlab.results.tables import markdown

PAGES = [Path("docs/results.md"), Path("docs/reference.md")]
BLOCK = re.compile(r"(<!-- report: (\w+) -->\n)(.*?)(<!-- /report -->)", re.S)


# ----------------------------------------------------------------------------- the page


def config_reference() -> str:
    """Every config key with its default and meaning, from the schema (bnlab.config.schema)."""
    keep = set(non_result_keys())
    rows = [
        [
            f"`{k}`",
            f"`{d}`" if d is not None else "`null`",
            text + (" (does not change results)" if k in keep else ""),
            allowed,
        ]
        for k, d, text, allowed in reference()
    ]
    return markdown(["key", "default", "meaning", "allowed"], rows)


def table_rows(block: str) -> dict[str, list[str]]:
    """A Markdown table's rows by their first cell (the header and rule left out)."""
    rows = [line.strip().strip("|").split(" | ") for line in block.splitlines()]
    rows = [[c.strip() for c in r] for r in rows if len(r) > 1 and not r[0].startswith("---")]
    return {r[0]: r for r in rows[1:]}


def heading(name: str, df: pd.DataFrame) -> str:
    codes = "; ".join(sorted(set(df["code"])))
    scale = NOT_FULL_SCALE + ", the CPU budget; " if df.attrs.get("config") else ""
    command = df.attrs.get("config", name)
    runs = df["run"].nunique()
    return f"`python run.py +experiment={command}` ({scale}{runs} runs; data from {codes})\n\n"


def write_report(page: Path, outputs: Path, root: Path = Path(".")) -> list[str]:
    """Rewrite every block of ``page`` from ``outputs`` and the experiments under ``root``;
    returns what was done, a line each."""
    frames: dict[str, Optional[pd.DataFrame]] = {}
    found = catalog.experiments(root)
    tables = {e.name: e.table for e in found if e.table is not None}
    gpu_scale = {e.name for e in found if e.gpu_scale}

    def load(folder: str) -> Optional[pd.DataFrame]:
        df = load_runs(outputs / folder) if (outputs / folder).is_dir() else None
        return None if df is None or df.empty else df

    def runs(name: str) -> Optional[pd.DataFrame]:
        """The experiment's runs; a GPU-scale one's CPU-budget runs where it has no others
        (``attrs["config"]`` names that config)."""
        if name not in frames:
            df = load(name)
            if df is None and name in gpu_scale and (df := load(f"{name}_cpu")) is not None:
                df.attrs["config"] = f"{name}_cpu"
            frames[name] = df
        return frames[name]

    done = []

    def replace(match: re.Match) -> str:
        start, name, old, end = match.groups()
        if name == "config":
            done.append("config: reference table written from the schema")
            return f"{start}{config_reference()}\n{end}"
        if name == "claims":
            done.append("claims: ledger written (rows without runs here kept as they were)")
            return f"{start}{ledger(catalog.claims(root), runs, table_rows(old))}\n{end}"
        df = runs(name)
        if df is None or name not in tables:
            done.append(f"{name}: no runs under {outputs / name}; block kept as it was")
            return match.group(0)
        done.append(f"{name}: table written from {df['run'].nunique()} runs")
        return f"{start}{heading(name, df)}{tables[name](df)}\n{end}"

    page.write_text(BLOCK.sub(replace, page.read_text()))
    return [f"{page}: {line}" for line in done]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlab.results.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pages", nargs="*", type=Path, default=PAGES)
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args(argv)
    for page in args.pages:
        if not page.is_file():
            print(f"bnlab: error: {page} not found (run from bnlab's folder)", file=sys.stderr)
            return 2
        for line in write_report(page, args.outputs):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
