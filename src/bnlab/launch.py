"""Experiments run in this process: :func:`run_experiment` does what
``python run.py +experiment=<name> name=<name>`` does, without starting a new Python.

Under the joblib launcher (every sweep here), the worker processes that train the jobs are
loky's reusable ones: experiments run one after another in one process share two warm
workers, where each ``run.py`` pays for starting its own (Python, torch, Hydra: about 3.5 s
per experiment on 2 cores). ``make figures`` draws every figure in one process this way
(:mod:`bnlab.suite`).

Hydra's public entry, ``@hydra.main``, reads ``sys.argv`` and reports a bad override by
printing it and exiting; running experiments from a thread with arguments of their own, their
errors as exceptions, needs what it calls inside: ``hydra._internal.hydra.Hydra`` and
``hydra._internal.utils.create_config_search_path`` (Hydra 1.3). That private API is pinned by
tests/test_launch.py: an experiment run here writes the same folders and byte-identical
metrics as ``python run.py`` does, and an unknown experiment is one line.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

_lock = threading.RLock()  # Hydra's global state and loky's executor are the process's


def compose(overrides: Sequence[str] = (), conf: Path = Path("conf")):
    """The typed, validated :class:`bnlab.config.schema.Config` that ``python run.py <overrides>``
    would train (one job; no sweep)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from bnlab.config.hydra_setup import register_configs
    from bnlab.config.schema import to_config

    register_configs()
    with _lock, initialize_config_dir(config_dir=str(conf.resolve()), version_base="1.3"):
        return to_config(hydra_compose("config", overrides=list(overrides)))


class Background:
    """Experiments run one after another in a background thread (:func:`trained_in_background`).

    ``pending`` maps each name to (done, [its exit status]). After an interrupted experiment
    (a status of 128 + signal) or :meth:`close`, the ones left are not started.
    """

    def __init__(self, names: Sequence[str], conf: Path):
        self.pending = {name: (threading.Event(), []) for name in names}
        self.stop = threading.Event()
        self.conf = conf
        self.thread = threading.Thread(target=self._work, name="bnlab-experiments", daemon=True)

    def _work(self) -> None:
        for name, (done, status) in self.pending.items():
            try:
                if not self.stop.is_set():
                    with _lock:
                        status.append(_run(name, (), self.conf))
                    if status[0] >= 128:
                        self.stop.set()
            except BaseException:  # a second Ctrl-C inside a job, the executor shut down
                status.append(130)
                self.stop.set()
            finally:
                done.set()

    def wait(self, name: str) -> int:
        """``name``'s exit status, once its run in the background has ended."""
        done, status = self.pending[name]
        done.wait()
        return status[0] if status else 130

    def close(self) -> None:
        """Start no other experiment; wait for the one running (Ctrl-C reaches its workers
        too: they checkpoint and stop)."""
        self.stop.set()
        self.thread.join()


_background: Background | None = None


@contextmanager
def trained_in_background(names: Sequence[str], conf: Path = Path("conf")):
    """Within the block, the experiments ``names`` run one after another in a background
    thread, so that this process can draw the figures of those done while the next trains
    (drawing otherwise leaves the workers idle, about 3 s per experiment); there,
    :func:`run_experiment` of one of them waits for it instead of running it again. On
    leaving the block (Ctrl-C included), no other experiment starts and the one running is
    waited for."""
    global _background
    _background = Background(names, conf)
    _background.thread.start()
    try:
        yield _background
    finally:
        _background.close()
        _background = None


def run_experiment(name: str, overrides: Sequence[str] = (), conf: Path = Path("conf")) -> int:
    """Compose ``+experiment=<name> name=<name> <overrides>`` from ``conf`` and run it (a sweep
    if the experiment is one), as run.py would. Finished runs are found, not trained again.

    Returns the exit status run.py would have: 0; 2 where a job was refused (a bad value,
    missing data; in a sweep the others still ran); 128 + signal where a job was interrupted
    (it checkpointed: running again resumes); 1 on any other error. Every error is printed
    as one line. Inside :func:`trained_in_background`, an experiment of its list is not run
    again: this waits for it there.
    """
    if _background and name in _background.pending and not overrides:
        return _background.wait(name)
    with _lock:  # one experiment at a time per process: Hydra's state is global
        return _run(name, overrides, conf)


def _run(name: str, overrides: Sequence[str], conf: Path) -> int:
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from hydra.version import setbase

    from bnlab.config.hydra_setup import register_configs
    from bnlab.errors import exit_status
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
    except (SystemExit, Exception) as exc:  # a job's or sweep's exit status; Hydra's errors
        return exit_status(exc, name)
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
