"""Checkpoints: what a run needs to continue exactly where it stopped.

A checkpoint holds a :class:`JobState`, one key per field: the model (BN running statistics
included), the optimizer, the global RNG state (dropout masks), the partial training-loss
window, each seed's status and last metrics, the step, the elapsed time and the config.
Mini-batch order needs no state: it is a function of the seed and the step. Files:

* ``checkpoint.pt``, written atomically (temp file, fsync, rename); the one it replaces is kept
  as ``checkpoint.prev.pt``;
* loaded with ``torch.load(..., weights_only=True)`` (no pickled code runs); an unreadable or
  truncated file is reported and the previous one is tried; if neither loads, the run starts
  over with a warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

log = logging.getLogger(__name__)

CURRENT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
FORMAT = 1


@dataclass
class JobState:
    """Everything a job's checkpoint holds, each field one key of checkpoint.pt (with
    ``format``). A field without a default is required: a checkpoint lacking it is treated as
    unreadable; those with one came later, and older checkpoints load without them."""

    step: int
    model: dict[str, Tensor]  # model.state_dict(), BN running statistics included
    optimizer: dict[str, Any]
    rng_cpu: Tensor  # the global RNG (dropout masks, BN noise): rng_state()
    window: Tensor  # the partial training-loss window: (K,) sums over window_steps steps
    window_steps: int
    replicas: list[dict[str, Any]]  # each run's status and last metrics (Run.as_dict)
    elapsed: float  # wall seconds the job has trained, over all its sittings
    resumes: int
    config: dict[str, Any]  # config_dict of the job's config
    rng_cuda: Optional[list[Tensor]] = None  # on a CUDA machine only
    eval_seconds: float = 0.0
    probe_seconds: float = 0.0
    code_history: list[str] = field(default_factory=list)  # the code that trained it, in order

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's dict: every field by name, but for rng_cuda without CUDA (None)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in state.items() if v is not None}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> JobState:
        """The JobState of a checkpoint's dict (missing optional keys at their defaults)."""
        return cls(**{f.name: state[f.name] for f in fields(cls) if f.name in state})

    @classmethod
    def required(cls) -> tuple[str, ...]:
        """The fields every checkpoint has."""
        return tuple(
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        )


# A checkpoint missing any of these is treated as unreadable.
REQUIRED = ("format", *JobState.required())


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``folder/checkpoint.pt`` atomically, keeping the previous one."""
    folder = Path(folder)
    tmp = folder / f".{CURRENT}.tmp"
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    current = folder / CURRENT
    if current.exists():
        os.replace(current, folder / PREVIOUS)
    os.replace(tmp, current)
    return current


def load_checkpoint(folder: Path) -> Optional[dict[str, Any]]:
    """The newest checkpoint in ``folder`` that loads and is complete, or None."""
    for name in (CURRENT, PREVIOUS):
        path = Path(folder) / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, corrupted, or not a checkpoint at all
            log.warning(
                "checkpoint %s is unreadable (%s: %s); trying an older one",
                path,
                type(exc).__name__,
                str(exc)[:200],
            )
            continue
        missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
        if missing or state.get("format") != FORMAT:
            log.warning(
                "checkpoint %s is incomplete (missing %s); trying an older one",
                path,
                ", ".join(missing) or "a known format",
            )
            continue
        return state
    return None


def remove_checkpoints(folder: Path) -> None:
    for name in (CURRENT, PREVIOUS, f".{CURRENT}.tmp"):
        path = Path(folder) / name
        if path.exists():
            path.unlink()


def rng_state() -> dict[str, Any]:
    state = {"rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_cpu"])
    if state.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
