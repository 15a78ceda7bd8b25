"""The data-parallel workers as the layers and the loop see them: how many there are, and
their collectives, whose failure (a worker gone) is one error type, :class:`WorkerLost`."""

from __future__ import annotations

from typing import Any, Callable

import torch.distributed as dist


class WorkerLost(RuntimeError):
    """A collective failed: another worker stopped (killed, or failed)."""


def world_size() -> int:
    """The number of data-parallel workers (1 without an initialized process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def collective(operation: Callable[..., Any], *args: Any) -> Any:
    """``operation(*args)`` (a torch.distributed collective); WorkerLost where it fails."""
    try:
        return operation(*args)
    except (RuntimeError, dist.DistError) as exc:
        said = str(exc).strip().splitlines()
        raise WorkerLost(said[0] if said else type(exc).__name__) from exc
