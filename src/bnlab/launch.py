"""Experiments run in this process: :func:`run_experiment` does what
``python run.py +experiment=<name> name=<name>`` does, without starting a new Python.

Under the joblib launcher (every sweep here), the worker processes that train the jobs are
loky's reusable ones: experiments run one after another in one process share two warm
workers, where each ``run.py`` pays for starting its own (Python, torch, Hydra: about 3.5 s
per experiment on 2 cores). ``make figures`` draws every figure in one process this way
(:mod:`bnlab.suite`).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Sequence

# Experiments being run by train_in_background: name -> (done, [exit status])
_background: dict[str, tuple[threading.Event, list[int]]] = {}


def train_in_background(names: Sequence[str], conf: Path = Path("conf")) -> threading.Thread:
    """Run the experiments ``names`` one after another in a background thread, so that this
    process can draw the figures of those done while the next trains (drawing otherwise
    leaves the workers idle, about 3 s per experiment). :func:`run_experiment` of one of
    them waits for its turn and returns its status instead of running it again."""
    for name in names:
        _background[name] = (threading.Event(), [])

    def work() -> None:
        for name in names:
            done, status = _background[name]
            try:
                status.append(run_experiment(name, conf=conf, background=False))
            finally:
                done.set()

    thread = threading.Thread(target=work, name="bnlab-experiments", daemon=True)
    thread.start()
    return thread


def run_experiment(
    name: str, overrides: Sequence[str] = (), conf: Path = Path("conf"), background: bool = True
) -> int:
    """Compose ``+experiment=<name> name=<name> <overrides>`` from ``conf`` and run it (a sweep
    if the experiment is one), as run.py would. Finished runs are found, not trained again.

    Returns the exit status run.py would have: 0, 2 where a job was refused (a bad value,
    missing data; the others still ran), 1 on any other error. Every error is printed as
    one line. Ctrl-C is not caught: what finished stays written, and running again resumes.
    An experiment given to :func:`train_in_background` (and ``background``) is not run
    again: this waits for it there.
    """
    if background and name in _background and not overrides:
        done, status = _background[name]
        done.wait()
        return status[0] if status else 1
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from hydra.version import setbase

    from bnlab.config import register_configs
    from bnlab.task import train_task

    register_configs()
    _workers_here()
    setbase("1.3")  # as run.py's hydra.main: jobs keep the working directory
    arguments = [f"+experiment={name}", f"name={name}", *overrides]
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2("run", create_config_search_path(str(conf.resolve())))
        if hydra.get_mode("config", arguments) == RunMode.MULTIRUN:
            hydra.multirun("config", train_task, arguments)
        else:
            _ = hydra.run("config", train_task, arguments).return_value  # raises its error
    except SystemExit as exc:  # a job's or the sweep's own exit status (refused jobs: 2)
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # Hydra's (an unknown experiment or key) or a job's
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"bnlab: error: {name}: {first}", file=sys.stderr, flush=True)
        return 1
    finally:
        GlobalHydra.instance().clear()
    return 0


_workers_cwd: list[Path] = []  # where loky's reusable workers were started (they stay there)


def _workers_here() -> None:
    """Jobs write to folders relative to the working directory of the process that runs
    them; loky's reusable workers keep the one they were started in. If this process has
    changed directory since, stop them, so that the next sweep starts workers here."""
    here = Path.cwd()
    if _workers_cwd and _workers_cwd[0] != here:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    _workers_cwd[:] = [here]
