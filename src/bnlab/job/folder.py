"""Run folders: where each seed's results go, what an existing folder means, and a lock.

A job's folder is named by its overrides (``outputs/<name>/<overrides>``), so the same command
finds the same folder again. What is found there decides what happens:

* nothing, or a run that never finished: train (from the start);
* a finished run (completed or diverged) with the same config: nothing to do, its results stand;
* a finished run with a different config (a default or an experiment file changed since):
  an error that names the keys, rather than mixing two configurations in one folder.

An exclusive lock (``.lock``, released by the OS when the process dies) keeps two processes from
writing one folder at the same time.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from bnlab.config.groups import group_keys
from bnlab.config.schema import Config, config_dict, flatten, non_result_keys, unnamed_keys
from bnlab.errors import BnlabError

FINISHED = ("completed", "diverged")
# Keys that do not change results: a finished run is reused when only these differ.
NON_RESULT_KEYS = set(non_result_keys())  # marked result=False in the schema
# What a job's folder holds before training writes anything (Hydra's files, our lock).
NOT_RESULTS = {".hydra", "run.log", ".lock"}
# Longest folder name, in bytes (NAME_MAX of ext4, xfs, btrfs, tmpfs...): a name that fits is
# kept as it is, so folders of earlier runs are found again.
MAX_FOLDER_NAME = 255


def folder_name(overrides: str) -> str:
    """A job's folder name from its overrides (Hydra's ``override_dirname``).

    The overrides themselves, or ``default`` when there are none. A name longer than
    ``MAX_FOLDER_NAME`` bytes (a long list value, many overrides) is cut there and ends with
    ``~`` and a hash of the whole name, so it stays unique and the same command finds the same
    folder again; the full overrides are in the folder's ``.hydra/overrides.yaml``.
    """
    name = overrides or "default"
    encoded = name.encode()
    if len(encoded) <= MAX_FOLDER_NAME:
        return name
    digest = hashlib.sha1(encoded).hexdigest()[:12]
    head = encoded[: MAX_FOLDER_NAME - len(digest) - 1].decode(errors="ignore")
    return f"{head}~{digest}"


def override_keys(
    overrides: Sequence[str], conf: Optional[Path] = None, swept: bool = False
) -> list[str]:
    """The schema keys that Hydra's ``overrides`` set (with ``swept``: sweep over, as
    ``norm=none,bn``) and a job's folder is named by (not :func:`bnlab.config.schema.unnamed_keys`),
    in their order. A group (``norm``) stands for the keys its options in ``conf`` set
    (:func:`bnlab.config.groups.group_keys`)."""
    keys: list[str] = []
    unnamed = unnamed_keys()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key in unnamed or (swept and not override.is_sweep_override()):
            continue
        group = conf is not None and (Path(conf) / key).is_dir()
        keys += group_keys(Path(conf), key) if group else [key]
    return list(dict.fromkeys(keys))


def sweep_axes(hydra_cfg: Any) -> list[str]:
    """The keys the jobs of a job's sweep differ in, from its Hydra config ``hydra_cfg``: those
    swept over on the command line and in ``hydra.sweeper.params``, as the sweep's
    ``multirun.yaml`` (Hydra's record of the command line) has them. A single job's: the keys
    its folder is named by."""
    conf = next(
        (
            Path(source.path)
            for source in hydra_cfg.runtime.config_sources
            if source.provider == "main" and source.schema == "file"
        ),
        None,
    )
    saved = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if hydra_cfg.mode.name != "MULTIRUN" or not saved.is_file():
        return override_keys(hydra_cfg.overrides.task, conf)
    sweep = (yaml.safe_load(saved.read_text()) or {}).get("hydra", {})
    params = (sweep.get("sweeper") or {}).get("params") or {}
    overrides = [
        *(sweep.get("overrides") or {}).get("task", []),
        *(f"{k}={v}" for k, v in params.items()),
    ]
    return override_keys(overrides, conf, swept=True)


def discard_if_unused(job_dir: Path) -> bool:
    """Remove ``job_dir`` when it holds nothing but what is there before training writes
    anything (Hydra's ``.hydra/`` and ``run.log``, the lock): a job refused for a bad value or
    missing data leaves no folder behind. Returns whether the folder was removed."""
    job_dir = Path(job_dir)
    if not job_dir.is_dir() or any(p.name not in NOT_RESULTS for p in job_dir.iterdir()):
        return False
    shutil.rmtree(job_dir)
    return True


class RunFolderError(BnlabError):
    """A run folder holds a run of another configuration."""


class RunFolderBusy(RunFolderError):
    """Another process is writing this run folder."""


def seed_dirs(job_dir: Path, seeds: list[int]) -> list[Path]:
    """One seed: the job folder is the run folder. Several: one ``seed=<s>`` folder each."""
    if len(seeds) == 1:
        return [job_dir]
    return [job_dir / f"seed={s}" for s in seeds]


def _schema_defaults() -> dict:
    return flatten(config_dict(Config()))


# Keys on which a finished run that recorded more serves a config that asks for less: the
# training is the same, and its records hold every one wanted (and more).
COVERED_BY_MORE = {
    "trainer.eval_splits": lambda stored, wanted: set(wanted or []) <= set(stored or []),
}


def config_differences(stored: dict, wanted: dict, finished: bool = False) -> list[str]:
    """``key: stored -> wanted`` for every result-relevant key that differs.

    A key that the stored config lacks (added to the schema after that run was made) counts
    as its default value, which is what that run used. For a ``finished`` run, a key of
    COVERED_BY_MORE whose stored value covers the wanted one is no difference.
    """
    a, b = {**_schema_defaults(), **flatten(stored)}, flatten(wanted)
    keys = sorted((set(a) | set(b)) - NON_RESULT_KEYS)
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in keys
        if a.get(k) != b.get(k)
        and not (finished and k in COVERED_BY_MORE and COVERED_BY_MORE[k](a.get(k), b.get(k)))
    ]


def refuse_other_config(
    folder: Path, stored: dict, wanted: dict, what: str, finished: bool = False
) -> None:
    """Raise RunFolderError naming the keys if ``folder``'s run (``what``: "a finished", "an
    unfinished") was made with another configuration than ``wanted``."""
    diffs = config_differences(stored, wanted, finished)
    if diffs:
        raise RunFolderError(
            f"{folder} holds {what} run of another configuration ({'; '.join(diffs[:4])}"
            f"{'; ...' if len(diffs) > 4 else ''}). Move or delete that folder, or pass "
            f"name=<new name> to write elsewhere"
        )


def _config_loader() -> type:
    """A YAML loader that reads config.yaml as OmegaConf.load does (its implicit types: 1e-5
    is a float, no timestamps), with libyaml's C parser where PyYAML has it: 10-20x faster,
    which is most of the time of loading a sweep of many runs."""
    from omegaconf._utils import get_yaml_loader

    class ConfigLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        pass

    ConfigLoader.yaml_implicit_resolvers = get_yaml_loader().yaml_implicit_resolvers
    return ConfigLoader


_CONFIG_LOADER = _config_loader()


def read_config(path: Path) -> dict:
    """A run's config.yaml as a plain nested dict (what OmegaConf.load + to_container give)."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CONFIG_LOADER) or {}


def finished_summary(run_dir: Path, wanted_config: dict) -> Optional[dict]:
    """The summary of a finished run of ``wanted_config`` in ``run_dir``, or None.

    Raises RunFolderError if the folder holds a finished run of another configuration.
    """
    summary_path, config_path = run_dir / "summary.json", run_dir / "config.yaml"
    if not summary_path.exists() or not config_path.exists():
        return None
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError:
        return None
    if summary.get("status") not in FINISHED:
        return None
    stored = read_config(config_path)
    refuse_other_config(run_dir, stored, wanted_config, "a finished", finished=True)
    return summary


def clear_partial(run_dir: Path) -> None:
    """Remove what an unfinished run wrote (metrics, events, summary) before training again."""
    for path in list(run_dir.glob("events.out.tfevents.*")) + [
        run_dir / "metrics.csv",
        run_dir / "summary.json",
    ]:
        if path.exists():
            path.unlink()


class FolderLock:
    """An exclusive, non-blocking lock on ``folder/.lock``; the OS drops it if the process dies."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self._fd: Optional[int] = None

    def __enter__(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                owner = self.path.read_text().strip() or "another process"
                raise RunFolderBusy(
                    f"{self.path.parent} is in use by {owner}; wait for it to "
                    f"finish, or pass name=<new name> to write elsewhere"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


REFUSED = ".refused"  # in a sweep's folder: one file per job refused for a bad value or data


def record_refusal(sweep_dir: Path, job_name: str, message: str) -> None:
    """Note that the sweep's job ``job_name`` was refused (``message``: why), for the sweep's
    end (:func:`refusals`); every launcher's jobs can write it, whatever process they run in."""
    folder = Path(sweep_dir) / REFUSED
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(job_name.encode()).hexdigest()[:12]
    (folder / digest).write_text(f"[{job_name}] {message}\n")


def refusals(sweep_dir: Path) -> list[str]:
    """Each refused job of the sweep: ``[<job folder>] <why>``."""
    folder = Path(sweep_dir) / REFUSED
    return sorted(p.read_text().strip() for p in folder.glob("*")) if folder.is_dir() else []


def clear_refusals(sweep_dir: Path) -> None:
    shutil.rmtree(Path(sweep_dir) / REFUSED, ignore_errors=True)
