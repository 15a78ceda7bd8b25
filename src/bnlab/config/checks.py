"""What a config key accepts, declared beside the key (``key(..., check=at_least(1))`` in
:mod:`bnlab.config.schema`): one object both tests a value and says the rule, so the error a user
sees and the line of docs/reference.md come from the same place.

``text()`` is the rule as the error writes it after the key (``must be > 0``); ``allowed()``
the same for the reference table (``> 0``). A key whose type is Optional also accepts null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence


def _number(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Range:
    """lo < (or <=) value < (or <=) hi; None: no bound on that side. ``each``: the value is a
    non-empty list, every item in range."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""
    each: bool = False

    def holds(self, value: Any) -> bool:
        if self.each:
            return len(value) > 0 and all(self._holds(v) for v in value)
        return self._holds(value)

    def _holds(self, v: float) -> bool:
        above = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        below = self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)
        return above and below

    def allowed(self) -> str:
        if self.hi is None:
            core = f"{'>' if self.lo_open else '>='} {_number(self.lo)}"
        elif self.lo is None:
            core = f"{'<' if self.hi_open else '<='} {_number(self.hi)}"
        else:
            ends = ("(" if self.lo_open else "[", ")" if self.hi_open else "]")
            core = f"in {ends[0]}{_number(self.lo)}, {_number(self.hi)}{ends[1]}"
        return f"a non-empty list, each {core}" if self.each else core

    def text(self, nullable: bool = False) -> str:
        rule = f"must be {self.allowed()}" + (" or null" if nullable else "")
        return rule + (f" ({self.note})" if self.note else "")


def above(lo: float, note: str = "") -> Range:
    """> lo."""
    return Range(lo=lo, lo_open=True, note=note)


def at_least(lo: float, note: str = "", each: bool = False) -> Range:
    """>= lo (``each``: a non-empty list of such values)."""
    return Range(lo=lo, note=note, each=each)


def within(lo: float, hi: float, ends: str = "[]", note: str = "") -> Range:
    """In the interval from lo to hi; ``ends`` "()" , "(]", "[)" or "[]" says which are in."""
    return Range(lo=lo, hi=hi, lo_open=ends[0] == "(", hi_open=ends[1] == ")", note=note)


@dataclass(frozen=True)
class Subset:
    """A list whose items are among ``choices``."""

    choices: Sequence[str]

    def holds(self, value: Any) -> bool:
        return set(value) <= set(self.choices)

    def allowed(self) -> str:
        return "any of " + ", ".join(self.choices)

    def text(self, nullable: bool = False) -> str:
        return f"may list {' and '.join(self.choices)} only"


@dataclass(frozen=True)
class Matches:
    """A string matching ``pattern`` (in full); ``says``: the rule in words."""

    pattern: str
    says: str

    def holds(self, value: Any) -> bool:
        return re.fullmatch(self.pattern, str(value)) is not None

    def allowed(self) -> str:
        return self.says

    def text(self, nullable: bool = False) -> str:
        return f"must be {self.says}"
