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
import importlib.util
import sys
import time
from pathlib import Path

from bnlab.errors import exit_status
from bnlab.launch import trained_in_background

SCRIPTS = Path("experiments")
CONF = Path("conf/experiment")


def figure_scripts(names: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The figure scripts of ``folder`` (all, or those named), in name order."""
    scripts = sorted((folder or SCRIPTS).glob("*.py"))
    if not names:
        return scripts
    known = {p.stem: p for p in scripts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"bnlab: error: no figure script {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [known[n] for n in names]


def run_script(path: Path, argv: list[str]) -> int:
    """Import the figure script at ``path`` and call its ``main(argv)``: its exit status. Any
    error in it is one line (``HYDRA_FULL_ERROR=1``: the traceback too), and status 1."""
    import matplotlib.pyplot as plt

    try:
        spec = importlib.util.spec_from_file_location(f"bnlab_figure_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return int(module.main(argv) or 0)
    except (SystemExit, Exception) as exc:
        return exit_status(exc, path.name, with_type=True)
    finally:
        plt.close("all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="figure scripts to run (default: all)")
    parser.add_argument("--fast", action="store_true", help="the small-budget experiments")
    parser.add_argument("--out", type=Path, help="figure folder (default: the scripts' own)")
    args = parser.parse_args(argv)
    if not Path("run.py").is_file():
        raise SystemExit("bnlab: error: run the suite from bnlab's folder (where run.py is)")
    script_argv = ["--fast"] * args.fast + (["--out", str(args.out)] if args.out else [])
    failed, start = [], time.perf_counter()
    scripts = figure_scripts(args.names, SCRIPTS)
    suffix = "_fast" if args.fast else ""
    experiments = [p.stem + suffix for p in scripts if (CONF / f"{p.stem}{suffix}.yaml").is_file()]
    try:
        with trained_in_background(experiments):  # the figures of those done are drawn here
            for path in scripts:
                print(f"== {path}", flush=True)
                if run_script(path, script_argv) != 0:
                    failed.append(path.stem)
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
