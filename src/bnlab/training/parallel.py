"""Data-parallel training: one job as W processes (``trainer.data_parallel`` = W), each with a
1/W slice of every batch, on ``torch.distributed`` (gloo on CPUs, NCCL on GPUs).

Every worker runs the same training loop (:mod:`bnlab.training.train`) on the same batches
(they are a function of (seed, step)), keeps its slice, and after the backward all-reduces, in
one collective, every gradient, its losses and whether it was asked to stop: each then holds
the gradients of the mean loss over the whole batch, the whole batch's losses (so every worker
takes the same decisions: divergence, the end) and the same stop step. BN normalizes over the
worker's slice (``norm=bn``: what a plain data-parallel model does), or over the whole batch
with ``norm.sync=true`` (:mod:`bnlab.layers.sync_batchnorm`).

Worker 0 is the job: it trains in the job's folder, evaluates and records. Worker r > 0 trains
in ``<job>/.rank<r>/`` (cleared first, removed at the end), records nothing anyone reads, and
evaluates nothing; after a resume it takes worker 0's state (:meth:`Parallel.share`).
:func:`spawn_workers` starts the W processes and stops them; a worker that dies is one line,
the others stop at the step they were in, and worker 0's checkpoint resumes the job.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import signal
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from bnlab.config.schema import Config
from bnlab.distributed import collective, world_size
from bnlab.errors import BnlabError
from bnlab.job.lifecycle import RunInterrupted
from bnlab.job.process import resolve_device, setup_process

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as Hydra's
TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for a slow worker


@dataclass(frozen=True)
class Parallel:
    """The training loop's view of the workers: ``rank`` of ``workers`` (1: one process)."""

    rank: int = 0
    workers: int = 1

    @classmethod
    def here(cls) -> "Parallel":
        """This process's place: from torch.distributed's default group, else one process."""
        workers = world_size()
        return cls(dist.get_rank(), workers) if workers > 1 else cls()

    @property
    def main(self) -> bool:
        """Worker 0: the one that evaluates and records."""
        return self.rank == 0

    def slice(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """This worker's 1/W of a (K, N, ...) batch: examples r*N/W .. (r+1)*N/W - 1."""
        if self.workers == 1:
            return x, y
        n = x.shape[1] // self.workers
        part = slice(self.rank * n, (self.rank + 1) * n)
        return x[:, part], y[:, part]

    def reduce(self, params: list[nn.Parameter], losses: Tensor, stop: bool) -> tuple[Tensor, bool]:
        """After the backward: every gradient and the losses averaged over the workers, and
        whether any of them was asked to stop; one all-reduce (WorkerLost if one is gone)."""
        if self.workers == 1:
            return losses, stop
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flags = torch.tensor([float(stop)], device=losses.device, dtype=losses.dtype)
        flat = torch.cat([*(g.reshape(-1) for g in grads), losses.detach().reshape(-1), flags])
        collective(dist.all_reduce, flat)
        flat.div_(self.workers)
        start = 0
        for p, g in zip(params, grads):
            p.grad = flat[start : start + g.numel()].view_as(p).to(p.dtype)
            start += g.numel()
        return flat[start:-1].view_as(losses), bool(flat[-1] > 0)

    def agree(self, flag: bool) -> bool:
        """Worker 0's ``flag``, on every worker."""
        if self.workers == 1:
            return flag
        box = [flag]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    def share(self, state: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        """Worker 0's ``state`` (a checkpoint's dict), on every worker; None for one process."""
        if self.workers == 1:
            return None
        box = [state if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


class WorkerDied(BnlabError):
    """Worker 0 died without a word (killed): its last checkpoint resumes the job."""


def run_data_parallel(
    cfg: Config, job_dir: Path, threads: Optional[int], axes: Sequence[str], train: Callable
) -> list[dict[str, Any]]:
    """``train(cfg, folder, axes)`` in W = trainer.data_parallel workers (the module doc);
    worker 0's summaries. Worker 0's error is raised as it was (a bad value: one line; a stop:
    RunInterrupted, with who stopped first when a worker died)."""
    workers, job_dir = cfg.trainer.data_parallel, Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    share = max(1, (threads or torch.get_num_threads()) // workers)
    rendezvous = job_dir / ".rendezvous"
    for stale in job_dir.glob(".worker*.result"):  # an earlier launch's, never read
        stale.unlink()
    codes = spawn_workers(
        workers, rendezvous, _worker, workers, rendezvous, train, cfg, job_dir, share, tuple(axes)
    )
    outcomes = {}
    for rank in range(workers):
        path = job_dir / f".worker{rank}.result"
        if path.exists():
            outcomes[rank] = torch.load(path, weights_only=False)
            path.unlink()
    died = [
        f"worker {r} of {workers} stopped ({_exit_words(code)})"
        for r, code in enumerate(codes)
        if code not in (0, None) and r not in outcomes
    ]
    kind, payload = outcomes.get(0, ("died", None))
    if kind == "ok" and not died:
        return payload
    if kind == "interrupted":
        exc = RunInterrupted(*payload)
        if died:
            exc.args = (f"{died[0]}; {exc}",)
        raise exc
    if kind == "error":
        raise payload
    if kind == "failed":
        raise RuntimeError(payload)
    raise WorkerDied(
        f"{died[0] if died else 'worker 0 stopped'}; its last checkpoint in {job_dir} resumes "
        "the job: run the same command again"
    )


def _exit_words(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


def _worker(
    rank: int,
    workers: int,
    rendezvous: Path,
    train: Callable,
    cfg: Config,
    job_dir: Path,
    threads: int,
    axes: tuple[str, ...],
) -> None:
    """One worker: worker 0 trains in ``job_dir``, worker r in ``job_dir/.rank<r>`` (quiet,
    cleared first, removed at the end); its outcome goes to ``job_dir/.worker<rank>.result``."""
    folder = job_dir if rank == 0 else job_dir / f".rank{rank}"
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.ERROR, format=LOG_FORMAT)
    if rank == 0:  # the job's log, as Hydra keeps it in one process
        log_file = logging.FileHandler(job_dir / "run.log")
        log_file.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(log_file)
    if rank:
        cfg = replace(cfg, rerun=True, trainer=replace(cfg.trainer, progress=False))
    try:
        setup_process(cfg, threads)
        device = resolve_device(cfg.device).type
        outcome = ("ok", join_workers(rank, workers, rendezvous, device, train, cfg, folder, axes))
    except RunInterrupted as exc:
        outcome = ("interrupted", (exc.signum, exc.step, exc.folder))
    except BnlabError as exc:
        outcome = ("error", exc)
    except BaseException as exc:  # noqa: BLE001 - reported by worker 0's caller
        outcome = ("failed", f"{type(exc).__name__}: {exc}")
    finally:
        if rank:
            shutil.rmtree(folder, ignore_errors=True)
    torch.save(outcome, job_dir / f".worker{rank}.result")


def backend(device: str) -> str:
    """NCCL for workers on CUDA devices, gloo for workers on CPUs (``device``: its type)."""
    return "nccl" if device == "cuda" else "gloo"


def join_workers(
    rank: int,
    workers: int,
    rendezvous: Path,
    device: str,
    target: Callable[..., Any],
    *args: Any,
) -> Any:
    """In a worker: join the group through the ``rendezvous`` file (:func:`backend` of
    ``device``, a device type), run ``target(*args)``, leave the group. On CUDA each worker
    takes device ``rank``."""
    if device == "cuda":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group(
        backend(device),
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=workers,
        timeout=TIMEOUT,
    )
    try:
        return target(*args)
    finally:
        dist.destroy_process_group()


def spawn_workers(
    workers: int, rendezvous: Path, worker: Callable[..., None], *args: Any
) -> list[Optional[int]]:
    """Run ``worker(rank, *args)`` in ``workers`` new processes and wait for them; the exit
    code of each (None where it was still running when the others were stopped). SIGTERM and
    SIGUSR2 to this process go on to every worker; SIGINT (Ctrl-C) is left to the terminal,
    which sends it to the workers too (they share its process group), so that no worker gets
    it twice, which would stop it at once without a checkpoint. When one worker dies, the
    others get SIGTERM (they checkpoint at their step), and SIGKILL 30 s later."""
    rendezvous.unlink(missing_ok=True)
    context = mp.start_processes(
        worker, args=args, nprocs=workers, join=False, start_method="spawn"
    )
    previous = {}

    def forward(signum, frame):
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)

    if threading.current_thread() is threading.main_thread():  # (signals: the main thread's)
        for signum in (signal.SIGTERM, signal.SIGUSR2):
            previous[signum] = signal.signal(signum, forward)
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while not context.join():
            pass
    except mp.ProcessExitedException:
        pass  # a worker died: join has stopped the others; the exit codes say who
    except mp.ProcessRaisedException:
        pass  # a worker raised outside its own handling: its message is on stderr
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        rendezvous.unlink(missing_ok=True)
    return [process.exitcode for process in context.processes]
