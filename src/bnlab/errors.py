"""Errors that carry a message meant for the user: printed as one line, never as a traceback."""

import os
import sys
import traceback


class BnlabError(Exception):
    """Base class: ``str(err)`` is the whole message a user needs, remedy included."""


class ConfigError(BnlabError):
    """A configuration value is out of range or inconsistent; the message names the key."""


class DataError(BnlabError):
    """A dataset cannot be found, downloaded or read; the message names the folder and remedy."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name where it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def exit_status(exc: BaseException, where: str, with_type: bool = False) -> int:
    """The exit status of ``exc``, caught at the top of ``where`` (an experiment, a script),
    said in one line: a SystemExit keeps its code (one that is a message is printed, status
    1); any other error is ``bnlab: error: <where>: [<type>: ]<its first line>``, status 1,
    after its traceback where ``HYDRA_FULL_ERROR=1`` (as for run.py)."""
    if isinstance(exc, SystemExit):
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr, flush=True)
        return 1
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exception(exc)
    kind = f"{type(exc).__name__}: " if with_type else ""
    print(f"bnlab: error: {where}: {kind}{first_line(exc)}", file=sys.stderr, flush=True)
    return 1
