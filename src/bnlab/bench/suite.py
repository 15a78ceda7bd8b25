"""Section 6, suite: the wall time of every experiment's fast runs in outputs/ (``--full``: its
full-budget runs), read from their summary.json, and of all of them: the time ``make figures``
takes to run them one after another. Beside it the reference step time measured now (the
eager nn.BatchNorm1d training step of the paper's MLP, one thread) and the sum scaled to the
step time at which the suite's targets are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from bnlab import catalog
from bnlab.bench.context import Bench
from bnlab.bench.steps import step_contender
from bnlab.bench.timing import interleaved, one_thread

SITTING_GAP_S = 30.0  # idle seconds between runs that mark another invocation
REFERENCE_STEP_MS = 1.4  # the step time at which the suite's targets are read (docs/speed.md)


def experiment_names(root: Path = Path(".")) -> list[str]:
    """Every experiment that trains (:func:`bnlab.catalog.experiments`), sorted."""
    return [e.name for e in catalog.experiments(root) if e.trains]


def experiment_wall_time(folder: Path) -> tuple[Optional[float], int]:
    """(seconds, runs) of the experiment whose runs are under ``folder``: from the start of the
    work for the first of them to the end of the last (``began_at``: a job's process start, or
    its own where a process served several jobs; ``process_started_at`` in older runs; else
    ``started_at``; and ``finished_at`` in their summary.json). None when a run is
    unfinished, older than those fields, resumed, or when the runs were made in several
    sittings (an idle gap of more than SITTING_GAP_S between them): no one span times those."""
    summaries = [json.loads(p.read_text()) for p in folder.rglob("summary.json")]
    spans = [
        (
            s.get("began_at") or s.get("process_started_at") or s.get("started_at"),
            s.get("finished_at"),
        )
        for s in summaries
    ]
    if not summaries or any(None in span for span in spans):
        return None, len(summaries)
    if any(s.get("resumes") for s in summaries):
        return None, len(summaries)
    spans.sort()
    end = spans[0][1]
    for start, finish in spans[1:]:
        if start > end + SITTING_GAP_S:
            return None, len(summaries)
        end = max(end, finish)
    return end - spans[0][0], len(summaries)


def reference_step_ms(bench: Bench) -> float:
    """The eager nn.BatchNorm1d training step of the paper's MLP (section 2's reference), ms,
    on one thread: how the suite's jobs run (two one-thread jobs at a time)."""
    with one_thread():
        contender = step_contender(bench.fig1, "torch", 1, False, bench.data)
        timing = interleaved({"torch": contender}, 5 if bench.quick else 100, 5)
    return 1000 * timing["torch"].median


def run(bench: Bench, outputs: Path = Path("outputs")) -> dict[str, object]:
    """``suite_<budget>_seconds`` (and ``_at_ref``), ``reference_step_ms`` and
    ``suite_missing``: experiments without timed runs (paper_fig1 without MNIST, say), left out
    of the sum."""
    budget, out = "full" if bench.full else "fast", bench.out
    out(f"\n6. Suite: every experiment's {budget} run, from its run folders' summary.json")
    if not Path("conf/experiment").is_dir():
        out("   skipped: run from bnlab's folder (where conf/ and outputs/ are)")
        return {f"suite_{budget}_seconds": "missing"}
    ref = reference_step_ms(bench)
    total, missing, names = 0.0, [], experiment_names()
    for name in names:
        seconds, runs = experiment_wall_time(outputs / (name if bench.full else f"{name}_fast"))
        if seconds is None:
            missing.append(name)
            why = (
                "no runs"
                if runs == 0
                else "not timed (unfinished, resumed, made in several sittings, or untimed)"
            )
            out(f"   {name:20s} {why}")
            continue
        total += seconds
        out(f"   {name:20s} {seconds:7.1f} s  ({runs} runs)")
    scaled = total * REFERENCE_STEP_MS / ref
    out(
        f"   all {total:.0f} s{' (missing: ' + ', '.join(missing) + ')' if missing else ''}; "
        f"reference step (nn.BatchNorm1d, eager) now {ref:.2f} ms: at {REFERENCE_STEP_MS} ms "
        f"about {scaled:.0f} s"
    )
    key = f"suite_{budget}_seconds"
    found = len(missing) < len(names)
    return {
        key: total if found else "missing",
        f"{key}_at_ref": scaled if found else "missing",
        "reference_step_ms": ref,
        "suite_missing": ",".join(missing) or "none",
    }
