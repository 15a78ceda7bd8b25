"""The task every job runs, under ``python run.py`` or :func:`bnlab.launch.run_experiment`:
compose -> typed config -> :func:`bnlab.training.train.run_job` -> one log line per run.

Errors meant for the user (a bad value, missing data) print one line: a single job exits with
status 2; in a sweep the job is recorded as refused and the others go on (the sweep reports
it at the end). An interrupted job checkpoints, hands the signal on, and exits 128 + signal.
"""

import logging
import signal
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def train_task(cfg: DictConfig) -> None:
    """Train the job that Hydra composed into ``cfg`` in the folder Hydra chose for it."""
    # Imported when a job runs, not when run.py starts: torch and the training code take
    # ~2 s to import, which --help, --cfg job and a refused override should not pay.
    from bnlab.config.schema import to_config
    from bnlab.errors import BnlabError
    from bnlab.job.folder import RunFolderBusy, discard_if_unused, record_refusal, sweep_axes
    from bnlab.job.lifecycle import RunInterrupted
    from bnlab.job.process import begin_job, threads_per_job
    from bnlab.job.runs import run_layout
    from bnlab.training.train import run_job

    begin_job()
    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    sweep = hydra_cfg.mode.name == "MULTIRUN"
    try:
        config = to_config(cfg)
        axes = sweep_axes(hydra_cfg)
        summaries = run_job(config, job_dir, threads_per_job(hydra_cfg.launcher), axes)
    except RunFolderBusy as exc:
        if sweep:  # another sweep is on it: leave it, go on
            log.warning("skipped: %s", exc)
            return
        _fail(str(exc))
    except BnlabError as exc:
        _close_logs_in(job_dir)  # so that an unused folder can go
        discard_if_unused(job_dir)
        if not sweep:
            _fail(str(exc))
        # one bad cell of a sweep: say so, and let the others run (reported again at the end)
        print(f"bnlab: error: [{job_dir.name}] {exc}", file=sys.stderr, flush=True)
        record_refusal(Path(hydra_cfg.sweep.dir), job_dir.name, str(exc))
        return
    except RunInterrupted as exc:
        log.warning("[%s] interrupted: %s", job_dir.name, exc)
        print(f"bnlab: interrupted: {exc}", file=sys.stderr, flush=True)
        _hand_on(exc.signum)
        sys.exit(128 + exc.signum)
    for (_, folder, label), summary in zip(run_layout(config, job_dir), summaries):
        final = summary.get("final", {})
        log.info(
            "[%s] %s: %s at step %s, val/accuracy %.4f, test/accuracy %.4f -> %s",
            job_dir.name,
            label,
            summary["status"],
            summary.get("diverged_step") or summary["step"],
            final.get("val/accuracy", float("nan")),
            final.get("test/accuracy", float("nan")),
            folder,
        )


def _close_logs_in(folder: Path) -> None:
    """Close and detach the log files (Hydra's run.log) that write into ``folder``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder:
            root.removeHandler(handler)
            handler.close()


def _hand_on(signum: int) -> None:
    """After our checkpoint, the signal goes to whoever handled it before the job: under
    submitit, USR2 (time limit or pre-emption) requeues the job, which then resumes."""
    handler = signal.getsignal(signum)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signum, None)


def _fail(message: str) -> None:
    print(f"bnlab: error: {message}", file=sys.stderr)
    sys.exit(2)
