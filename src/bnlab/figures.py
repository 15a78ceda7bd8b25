"""Shared plumbing for the figure scripts in experiments/: variant names and colours, mean +/-
interval bands, saving PNG + PDF, and running the experiment a figure needs when it is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"none": ("No BN", "tab:blue"), "bn": ("BN", "tab:red"),
            "torch": ("nn.BatchNorm", "tab:green")}


def figure_dir(fast: bool) -> Path:
    """Where figures go: outputs/figures/, or outputs/figures/fast/ for the small budget."""
    return ROOT / "outputs" / "figures" / ("fast" if fast else "")


def label_and_colour(kind: str) -> tuple[str, str]:
    return VARIANTS.get(kind, (kind, "tab:gray"))


def band(ax, curve: pd.DataFrame, label: str, colour: str, linestyle: str = "-") -> None:
    """A mean line with its shaded interval (``curve`` from :func:`bnlab.analysis.curves`)."""
    ax.plot(curve["step"], curve["mean"], linestyle, color=colour, label=label, lw=1.6)
    ax.fill_between(curve["step"], curve["lo"], curve["hi"], color=colour, alpha=0.2, lw=0)


def save(fig, path: Path) -> Path:
    """Write ``path`` (PNG) and the same figure as PDF beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def ensure_experiment(experiment: str, overrides: Sequence[str] = (), name: str | None = None,
                      outputs: Path = ROOT / "outputs") -> tuple[Path, int]:
    """Run ``python run.py +experiment=<experiment>`` unless its runs already finished.

    Finished runs are skipped by the runner, so this is cheap when the results are there.
    Returns (the results folder, the command's exit status).
    """
    name = name or experiment
    cmd = [sys.executable, str(ROOT / "run.py"), f"+experiment={experiment}", f"name={name}",
           *overrides]
    print("$", " ".join(cmd[1:]), flush=True)
    status = subprocess.run(cmd, cwd=outputs.parent).returncode
    return outputs / name, status
