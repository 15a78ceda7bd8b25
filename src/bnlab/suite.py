"""``make figures``: every figure script of experiments/ in one process,
``python -m bnlab.suite [--fast] [names...]``.

Each script's experiment is run where runs are missing (:func:`bnlab.figures.ensure_experiment`),
then its figures are drawn. In one process the scripts share Python, torch, Hydra and the
joblib launcher's two worker processes instead of starting them once per script (about 8 s
per script on 2 cores, 2 minutes over the suite), and the experiments run one after another
in a background thread while the figures of those done are drawn here
(:func:`bnlab.launch.trained_in_background`). A script that fails is named at the end and the
others still draw; what finished stays written, and running again resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bnlab import catalog
from bnlab.errors import exit_status
from bnlab.launch import trained_in_background


def run_script(experiment: catalog.Experiment, argv: list[str]) -> int:
    """Call the experiment module's ``main(argv)``: its exit status. Any error in it is one
    line (``HYDRA_FULL_ERROR=1``: the traceback too), and status 1."""
    import matplotlib.pyplot as plt

    try:
        return int(experiment.module.main(argv) or 0)
    except (SystemExit, Exception) as exc:
        return exit_status(exc, experiment.path.name, with_type=True)
    finally:
        plt.close("all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="experiments to draw (default: all)")
    parser.add_argument("--fast", action="store_true", help="the small-budget experiments")
    parser.add_argument("--out", type=Path, help="figure folder (default: the scripts' own)")
    args = parser.parse_args(argv)
    if not Path("run.py").is_file():
        raise SystemExit("bnlab: error: run the suite from bnlab's folder (where run.py is)")
    script_argv = ["--fast"] * args.fast + (["--out", str(args.out)] if args.out else [])
    failed, start = [], time.perf_counter()
    chosen = catalog.named(args.names)
    suffix = "_fast" if args.fast else ""
    to_train = [e.name + suffix for e in chosen if e.trains]
    try:
        with trained_in_background(to_train):  # the figures of those done are drawn here
            for experiment in chosen:
                print(f"== {catalog.MODULES / experiment.path.name}", flush=True)
                if run_script(experiment, script_argv) != 0:
                    failed.append(experiment.name)
    except KeyboardInterrupt:
        print("bnlab: interrupted; finished runs are kept, run again to go on", file=sys.stderr)
        return 130
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"== suite: {minutes} min {seconds} s", flush=True)
    if failed:
        print(f"bnlab: error: figures not drawn: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
