"""Which code made a result: the git commit and a hash of the uncommitted changes to src/ and
conf/, recorded in every run's summary.json and compared when a finished run is met again.

``code_state()`` returns::

    git_commit    HEAD of the repository bnlab is imported from (None outside git)
    git_dirty     whether src/ or conf/ hold uncommitted changes (tracked or untracked files)
    code_changes  sha1 (12 hex digits) of those changes, None when there are none
    code_version  sha1 (12 hex digits) of src/ and conf/ as they are: the trees of HEAD and
                  the changes; equal exactly when the code and configs are the same, so a
                  commit that touches only docs or tests keeps it

A copy of bnlab outside a git repository records None for all four.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

import bnlab

CODE_PATHS = (":/src", ":/conf")


def _git(*args: str, cwd: Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.cache
def _code_state() -> dict[str, Any]:
    package_dir = Path(bnlab.__file__).resolve().parent
    commit = _git("rev-parse", "HEAD", cwd=package_dir)
    if commit is None:
        return dict(git_commit=None, git_dirty=None, code_changes=None, code_version=None)
    top = Path(_git("rev-parse", "--show-toplevel", cwd=package_dir).strip())
    diff = _git("diff", "HEAD", "--binary", "--", *CODE_PATHS, cwd=top) or ""
    untracked = (
        _git("ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_PATHS, cwd=top) or ""
    )
    changes = hashlib.sha1(diff.encode())
    for name in sorted(filter(None, untracked.split("\0"))):
        if (top / name).is_file():
            changes.update(name.encode() + b"\0" + (top / name).read_bytes())
    dirty = bool(diff or untracked)
    trees = _git("rev-parse", "HEAD:src", "HEAD:conf", cwd=top) or commit
    version = hashlib.sha1(trees.encode() + (changes.digest() if dirty else b""))
    return dict(
        git_commit=commit.strip(),
        git_dirty=dirty,
        code_changes=changes.hexdigest()[:12] if dirty else None,
        code_version=version.hexdigest()[:12],
    )


def code_state() -> dict[str, Any]:
    """The fields of the module docstring for the code running now (computed once a process:
    a process runs the code it imported)."""
    return dict(_code_state())  # a copy: callers may add to it


def run_environment(device: str) -> dict[str, Any]:
    """What made a run, for its summary.json: versions, device, threads, and :func:`code_state`."""
    import torch  # here, not at the top: loading run folders (analysis) needs no torch

    return dict(
        torch_version=torch.__version__,
        bnlab_version=bnlab.__version__,
        device=device,
        python=platform.python_version(),
        threads=torch.get_num_threads(),
        **code_state(),
    )


def describe(state: dict[str, Any]) -> str:
    """``commit 1a2b3c4`` or ``commit 1a2b3c4 + changes 5d6e7f8a9b0c``, or ``unrecorded code``;
    for a run resumed with other code, each version in order (``code_history``)."""
    if state.get("code_history"):
        return " then ".join(state["code_history"])
    if not state.get("git_commit"):
        return "unrecorded code"
    text = f"commit {state['git_commit'][:7]}"
    return f"{text} + changes {state['code_changes']}" if state.get("code_changes") else text
