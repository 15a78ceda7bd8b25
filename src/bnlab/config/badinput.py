"""Bad input on run.py's command line, said in one line: an unknown experiment, group option or
key, a value of the wrong type or outside its Enum. Hydra finds these while it composes the
config, before bnlab's task runs, and prints 6 to 40 lines; here each is one line
``bnlab: error: ...`` that names what was wrong and the valid choices (the YAML files of
``conf/<group>/``, the schema's keys and Enums), and the exit status is 2, as for the bad
values :func:`bnlab.config.schema.validate` finds.

Hydra raises these errors (rather than printing them) only under ``HYDRA_FULL_ERROR=1``:
:func:`one_line_errors` sets it until the config is composed (:func:`composed`). Where the
user set it, Hydra's full output stands.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Union, get_args, get_origin

from hydra.errors import CompactHydraException, MissingConfigException
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from bnlab.config.groups import group_options, schema_type
from bnlab.errors import first_line

FULL_ERROR = "HYDRA_FULL_ERROR"
_set_here = False  # whether one_line_errors set FULL_ERROR (composed() unsets it)
# A value of a schema type, in words: (one value, several values)
WORDS = {
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}


@contextmanager
def one_line_errors(conf: Path) -> Iterator[None]:
    """Within the block, an error Hydra prints without a traceback (its CompactHydraException:
    bad input) exits with status 2 after one line, :func:`explain`; any other error is left
    as it is. ``conf`` is the folder of run.py's config."""
    global _set_here
    if os.environ.get(FULL_ERROR) == "1":  # the user asked for Hydra's full output
        yield
        return
    os.environ[FULL_ERROR] = "1"  # Hydra raises its errors rather than printing them
    _set_here = True
    try:
        yield
    except CompactHydraException as exc:
        print(f"bnlab: error: {explain(exc, conf)}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        composed()


def composed() -> None:
    """The config is composed (the task starts): from here on Hydra reports errors its own
    way again (a task's error: its traceback, status 1). Call it first in the task."""
    global _set_here
    if _set_here:
        os.environ.pop(FULL_ERROR, None)
        _set_here = False


def explain(exc: CompactHydraException, conf: Path) -> str:
    """One line for Hydra's error ``exc`` that names the bad input and the valid choices."""
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        known = sorted({*(exc.options or ()), *group_options(conf, group)})
        return f"no {group or 'config'} '{option}' (known: {', '.join(known)})"
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        said = _unknown_key(cause) or _bad_value(cause)
        if said:
            return said
    return _first_paragraph(exc)


def _unknown_key(cause: OmegaConfBaseException) -> str | None:
    """``no key trainer.stepz (trainer's keys: steps, ...)`` for a key the schema lacks."""
    if not isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        return None
    section, _, _ = str(cause.full_key).rpartition(".")
    keys = _keys_of(schema_type(section))
    if keys is None:
        return None
    where = f"{section}'s keys" if section else "keys"
    return f"no key {cause.full_key} ({where}: {', '.join(keys)})"


def _bad_value(cause: OmegaConfBaseException) -> str | None:
    """``norm.stats=foo is not one of ema, ...``, ``norm.eps=abc is not a number``."""
    if not isinstance(cause, ValidationError):
        return None
    key, value = cause.full_key, cause.value
    kind = schema_type(str(key))
    if is_dataclass(kind):
        keys = ", ".join(_keys_of(kind))
        return f"{key}={value}: {key} is a section of keys, not a group ({key}'s keys: {keys})"
    return f"{key}={value} is not {_describe(kind)}" if kind is not None else None


def _keys_of(section: Any) -> list[str] | None:
    """The keys of a section of the schema (a dataclass), in order; None for anything else."""
    return [f.name for f in fields(section)] if is_dataclass(section) else None


def _describe(kind: Any) -> str:
    """What a value of the schema type ``kind`` is, in words: ``one of ema, population, batch``,
    ``an integer``, ``a list of numbers or null``."""
    if get_origin(kind) is Union:
        inner = [_describe(k) for k in get_args(kind) if k is not type(None)]
        return " or ".join(inner) + " or null"
    if get_origin(kind) is list:
        return f"a list of {WORDS.get(get_args(kind)[0], ('', 'values'))[1]}"
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "one of " + ", ".join(str(m.value) for m in kind)
    return WORDS.get(kind, (f"a {getattr(kind, '__name__', kind)}",))[0]


def _first_paragraph(exc: BaseException) -> str:
    """Hydra's message up to its first blank line, its lines joined by '; ', and the first line
    of the OmegaConf error under it (the message of an error this module does not know)."""
    lines = []
    for line in str(exc).strip().splitlines():
        if not line.strip() or line.startswith("Config search path"):
            break
        if not line[0].isspace():
            lines.append(line.strip().rstrip("."))
    said = "; ".join(lines) or type(exc).__name__
    cause = exc.__cause__
    return f"{said}: {first_line(cause)}" if isinstance(cause, OmegaConfBaseException) else said
