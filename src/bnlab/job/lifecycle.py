"""A job's life cycle in its folder: lock, earlier results, resume, checkpoints, signals and
each run's status and summary. The training loop (:mod:`bnlab.training.train`) runs inside it::

    with open_job(cfg, job_dir) as job:     # lock; finished already? resume? signals
        if job.finished is None:
            ...build the model and optimizer...
            job.start(model, optimizer, total_steps)   # restore a checkpoint; open the runs
            ...the loop: job.record(...), job.checkpoint(), job.stop_requested...
                                            # on exit: final status and summary of every run

What an existing folder means (see :mod:`bnlab.job.folder`): runs that finished with this
config are not trained again (a warning when other code made them, see
:mod:`bnlab.job.provenance`; ``rerun=true`` trains them again); an unfinished job resumes from its
newest usable checkpoint, or starts over when it has none. SIGINT, SIGTERM and SIGUSR2 (what
SLURM sends before a time limit or a pre-emption) become a stop at the next step boundary: a
checkpoint is written and :class:`RunInterrupted` raised (a second signal stops at once).
The final status of each run is ``completed`` or ``diverged`` (a finished run),
``interrupted``, or ``failed`` (with the error in summary.json).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from bnlab.config.schema import Config, config_dict
from bnlab.job.checkpoint import (
    JobState,
    load_checkpoint,
    remove_checkpoints,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from bnlab.job.folder import FolderLock, clear_partial, finished_summary, refuse_other_config
from bnlab.job.process import job_began_at
from bnlab.job.provenance import code_state, describe, run_environment
from bnlab.job.runs import LossWindow, Runs
from bnlab.training.evaluation import EVAL_MODE_NOTE

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)  # USR2: SLURM's warning


class RunInterrupted(Exception):
    """A signal stopped the job; a checkpoint was written at ``step``."""

    def __init__(self, signum: int, step: int, folder: Path):
        self.signum, self.step, self.folder = signum, step, folder
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} at step {step}: checkpoint written in {folder}; run the same command "
            f"again to resume"
        )


@contextlib.contextmanager
def stop_on_signals() -> Iterator[dict[str, Optional[int]]]:
    """Yields ``{"signal": None}``; a stop signal sets it (a second one stops at once)."""
    request: dict[str, Optional[int]] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request["signal"] is None:
            request["signal"] = signum
        elif signum == signal.SIGINT:  # a second Ctrl-C: stop at once (a repeated SIGTERM or
            raise KeyboardInterrupt  # USR2 from a scheduler changes nothing: already stopping)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: installed from C, cannot be put back from Python
                signal.signal(sig, old)


class JobClock:
    """A job's wall time over all its sittings, and the seconds of it spent evaluating and
    probing (``eval``, ``probe``)."""

    def __init__(self):
        self.elapsed = 0.0  # the earlier sittings'
        self.seconds = {"eval": 0.0, "probe": 0.0}
        self.started: Optional[float] = None  # this sitting's start (perf_counter)

    def start(self) -> None:
        self.started = time.perf_counter()

    def wall_time(self) -> float:
        return self.elapsed + time.perf_counter() - self.started

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Adds the time spent inside to ``seconds[what]``."""
        started = time.perf_counter()
        yield
        self.seconds[what] += time.perf_counter() - started

    def account(self, steps: int, replicas: int, probed: bool) -> dict[str, Any]:
        """The times of summary.json after ``steps`` steps of ``replicas`` models: the wall
        time, steps per second, the end, and ``<what>_seconds`` with ``<what>_time_share`` of
        the wall time for the evaluations, and for the probes when the job probes."""
        wall = self.wall_time()
        account: dict[str, Any] = dict(
            wall_time_s=round(wall, 3),
            steps_per_second=round(steps / wall, 2) if wall > 0 else None,
            model_steps_per_second=round(steps * replicas / wall, 2) if wall > 0 else None,
            finished_at=round(time.time(), 3),
        )
        for what, spent in self.seconds.items():
            if what == "eval" or probed:
                account[f"{what}_seconds"] = round(spent, 3)
                account[f"{what}_time_share"] = round(spent / wall, 4) if wall else None
        return account


class Job:
    """A job's state apart from the model: step, clock, loss window, runs (checkpoint: JobState)."""

    def __init__(self, cfg: Config, job_dir: Path, axes: Sequence[str] = ()):
        self.cfg, self.dir = cfg, Path(job_dir)
        self.runs = Runs(cfg, self.dir, axes)
        self.seeds = self.runs.seeds
        self.finished: Optional[list[dict[str, Any]]] = None  # summaries, if nothing to train
        self.step, self.resumes = 0, 0
        self.clock = JobClock()  # clock.timed("eval") times the evaluations, into summary.json
        self.saved: Optional[JobState] = None  # the checkpoint to resume from
        self.code_history: list[str] = []  # the code that trained this job, in order
        self._stop: dict[str, Optional[int]] = {"signal": None}

    def start(self, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int) -> None:
        """Restore the checkpoint (if resuming) into ``model`` and ``optimizer``; open the runs."""
        self.model, self.optimizer, self.total_steps = model, optimizer, total_steps
        device = next(model.parameters()).device
        self.window = LossWindow(len(self.seeds), device)
        if self.saved is not None:
            self._restore(self.saved)
            self.saved = None  # the model and optimizer hold it now
        self.code_history, environment = environment_now(self.dir, self.code_history, device)
        self.clock.start()
        self.runs.open(
            self.step,
            started_at=round(time.time(), 3),  # wall-clock times: for bnlab.bench's suite
            began_at=job_began_at(),
            steps_total=total_steps,
            resumes=self.resumes,
            metric_modes=EVAL_MODE_NOTE,
            **environment,
        )

    def _restore(self, saved: JobState) -> None:
        self.model.load_state_dict(saved.model)
        self.optimizer.load_state_dict(saved.optimizer)
        restore_rng(saved.state_dict())
        self.step, self.resumes = int(saved.step), int(saved.resumes) + 1
        self.clock.elapsed = float(saved.elapsed)
        self.window.total = saved.window.to(self.window.total.device)
        self.window.steps = int(saved.window_steps)
        self.clock.seconds.update(eval=float(saved.eval_seconds), probe=float(saved.probe_seconds))
        self.runs.restore(saved.replicas, self.step)
        self.code_history = list(saved.code_history)

    def _state(self) -> JobState:
        """What a checkpoint now holds (:meth:`_restore` puts it back)."""
        return JobState(
            step=self.step,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            **rng_state(),
            window=self.window.total.cpu(),
            window_steps=self.window.steps,
            replicas=[run.as_dict() for run in self.runs.runs],
            elapsed=self.clock.wall_time(),
            resumes=self.resumes,
            config=config_dict(self.cfg),
            eval_seconds=self.clock.seconds["eval"],
            probe_seconds=self.clock.seconds["probe"],
            code_history=self.code_history,
        )

    def note(self, **fields: Any) -> None:
        """Set ``fields`` in every run's summary.json (how the job trains, say); a None
        value removes its key (a reason recorded by an earlier sitting of the job)."""
        for run in self.runs.runs:
            for name in [k for k, v in fields.items() if v is None]:
                run.recorder.summary.pop(name, None)
            run.recorder.write_summary(**{k: v for k, v in fields.items() if v is not None})

    def checkpoint(self) -> None:
        """Flush every record up to this step, then write the checkpoint (in that order)."""
        for run in self.runs.runs:
            run.recorder.flush()
        save_checkpoint(self.dir, self._state().state_dict())

    def record(self, step: int, metrics: dict[str, Any], final: bool = True) -> None:
        """Record (K,) metrics into the runs (:meth:`Runs.record`); ``final`` ones (evaluation)
        are made durable at once and logged."""
        self.runs.record(step, metrics, final)
        if final:
            self.runs.flush(step)
            if self.runs.live():
                log.info(
                    "[%s] step %d/%d  val/accuracy %s  test/accuracy %s",
                    self.dir.name,
                    step,
                    self.total_steps,
                    self.runs.describe("val/accuracy"),
                    self.runs.describe("test/accuracy"),
                )

    def record_training_loss(self, step: int) -> None:
        """The loss window's mean as ``train/loss`` (divergence checked: :mod:`bnlab.job.runs`)."""
        self.runs.record_training_loss(step, self.window.mean_and_reset())

    @property
    def stop_requested(self) -> bool:
        return self._stop["signal"] is not None

    def request_stop(self, signum: int) -> None:
        """Stop at the next step boundary, as if ``signum`` had come (unless one did)."""
        self._stop["signal"] = self._stop["signal"] or signum

    def stop(self) -> None:
        """After a stop signal: checkpoint, then raise RunInterrupted."""
        self.checkpoint()
        raise RunInterrupted(self._stop["signal"], self.step, self.dir)

    def finish(self, outcome: str, error: Optional[str] = None) -> None:
        """Every run's final status and summary (nothing before :meth:`start`)."""
        if self.clock.started is None:
            return
        if outcome == "completed":
            try:  # the trained model stays available
                self.checkpoint()
                (self.dir / "checkpoint.prev.pt").unlink(missing_ok=True)
            except OSError as exc:  # the results are complete without it
                log.warning("%s: the final checkpoint could not be written (%s)", self.dir, exc)
        t = self.cfg.trainer
        probed = bool(t.probe_every or t.grad_norm_every or t.hessian_every)
        account = self.clock.account(self.step, len(self.seeds), probed)
        self.runs.finish(outcome, error, step=self.step, **account)


def environment_now(
    folder: Path, history: list[str], device: torch.device
) -> tuple[list[str], dict[str, Any]]:
    """The code that trained the job in ``folder``, in order, once this code trains it on
    ``device`` (a warning when other code trained it last), and the run environment for
    summary.json (with that history, and no code version, when several versions made it)."""
    environment = run_environment(str(device))
    now = describe(environment)
    if history and history[-1] != now:
        log.warning(
            "%s: resumed with other code: trained so far by %s, now by %s",
            folder,
            history[-1],
            now,
        )
    history = [h for h in history if h != now] + [now]
    if len(history) > 1:  # no single version made these results
        environment.update(code_history=history, code_version=None)
    return history, environment


def earlier_results(job: Job) -> Optional[JobState]:
    """What ``job``'s folder holds: runs finished with this config (``job.finished`` is set;
    a warning when other code made them), an unfinished job's newest usable checkpoint
    (returned), or neither (what an unfinished run left is cleared: start over). With
    ``rerun=true`` finished runs and checkpoints are cleared alike."""
    runs, rerun = job.runs.runs, job.cfg.rerun
    done = [finished_summary(r.folder, c) for r, c in zip(runs, job.runs.configs())]
    if all(done) and not rerun:
        job.finished = done
        _warn_if_other_code(job.dir, done)
        states = ", ".join(f"{r.label}: {s['status']}" for r, s in zip(runs, done))
        log.info("%s: already finished with this config (%s); nothing to train", job.dir, states)
        return None
    saved = None if rerun else load_checkpoint(job.dir)
    if saved is not None:
        refuse_other_config(job.dir, saved["config"], config_dict(job.cfg), "an unfinished")
        log.info("%s: resuming from the checkpoint at step %d", job.dir, saved["step"])
        return JobState.from_state_dict(saved)
    if rerun:
        log.info("%s: rerun=true: training again from the start", job.dir)
    elif any((r.folder / "metrics.csv").exists() for r in runs):
        log.warning("%s: an unfinished run without a usable checkpoint; starting over", job.dir)
    for run in runs:
        clear_partial(run.folder)
    remove_checkpoints(job.dir)
    return None


def _warn_if_other_code(folder: Path, summaries: list[dict[str, Any]]) -> None:
    now = code_state()
    other = [s for s in summaries if s.get("code_version") != now["code_version"]]
    if other and now["code_version"] is not None:
        log.warning(
            "%s: these results came from %s, the code is now %s; kept as they are (add "
            "rerun=true to train them again)",
            folder,
            describe(other[0]),
            describe(now),
        )


@contextlib.contextmanager
def open_job(cfg: Config, job_dir: Path, axes: Sequence[str] = ()) -> Iterator[Job]:
    """The job of ``cfg`` in ``job_dir``, locked, its earlier results found; see the module doc.
    ``axes``: the keys its sweep varies (:class:`bnlab.job.runs.Runs`)."""
    job = Job(cfg, job_dir, axes)
    with FolderLock(job.dir):
        job.saved = earlier_results(job)
        if job.finished is not None:
            yield job
            return
        with stop_on_signals() as job._stop:
            try:
                yield job
            except (RunInterrupted, KeyboardInterrupt):
                job.finish("interrupted")
                raise
            except BaseException as exc:
                job.finish("failed", f"{type(exc).__name__}: {exc}")
                raise
            else:
                job.finish("completed")
