"""Process set-up, done once per job by the entry point (``run.py``,
:func:`bnlab.training.train.run_job`) and nowhere else: importing a bnlab module changes
nothing about the process.

:func:`setup_process` sets torch's threads (``trainer.threads``; a parallel launcher's share of
the cores when unset), keeps freed memory in the process (:mod:`bnlab.job.allocator`), makes
torch deterministic (and cuBLAS, with a fixed workspace, on CUDA), and seeds torch's, NumPy's
and Python's global generators with ``seed``: dropout masks and BN noise draw from torch's;
weights and batch order have generators of their own.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from bnlab.config.schema import Config
from bnlab.errors import ConfigError
from bnlab.job.allocator import keep_freed_memory


def resolve_device(name: str) -> torch.device:
    """``device``: auto (CUDA where there is one, else the CPU), cpu, cuda or cuda:N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def process_started_at() -> Optional[float]:
    """When this process started, in Unix time (Linux: from /proc); None where unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc(5), starttime, in clock ticks after boot
        with open("/proc/stat") as stat:
            boot = next(float(line.split()[1]) for line in stat if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_job_starts: list[float] = []  # when each job this process ran began (Unix time)


def begin_job() -> None:
    """Note that a job begins in this process (:func:`bnlab.task.train_task` calls it first)."""
    _job_starts.append(time.time())


def job_began_at() -> Optional[float]:
    """When the work of the current job began, in Unix time: the start of the process for its
    first job (Python, imports and set-up are that job's cost), else the job's own start (a
    process that serves several jobs, like the joblib launcher's workers)."""
    if len(_job_starts) <= 1:
        return process_started_at()
    return _job_starts[-1]


def setup_process(cfg: Config, threads: Optional[int] = None) -> None:
    """Threads, allocator, determinism and seeds for a job of ``cfg`` (see the module doc).
    ``threads``: the default when ``trainer.threads`` is unset (None: torch's own)."""
    threads = cfg.trainer.threads or threads
    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()
    if resolve_device(cfg.device).type == "cuda":  # cuBLAS is deterministic with a fixed
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # workspace; read once
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)


def threads_per_job(launcher: dict) -> Optional[int]:
    """A job's share of the cores: SLURM's ``SLURM_CPUS_PER_TASK`` where it is set; under the
    joblib launcher (parallel jobs on one machine) cores // n_jobs; else None (torch's
    default). ``launcher``: Hydra's ``hydra.launcher`` node."""
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        return max(1, int(os.environ["SLURM_CPUS_PER_TASK"]))
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    parallel = cores if n_jobs < 0 else n_jobs  # joblib's -1: one job per core
    return max(1, cores // max(1, parallel))
