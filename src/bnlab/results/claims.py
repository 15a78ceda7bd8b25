"""The claims ledger: each claim the harness tests is a record, decided by a rule from the runs.

A :class:`Claim` (its text, source, figure and :class:`Rule`) lives in its experiment's module
(``CLAIMS = [...]`` in ``experiments/<name>.py``) and is measured on that experiment's runs,
``outputs/<name>/``. A rule turns those runs into two strings: what was measured, and a
verdict, one of :data:`CONFIRMED`, :data:`CONTRADICTED`, :data:`NOT_REPRODUCED`, or
``mixed: <case> <verdict>, ...`` when cases disagree. The vocabulary:

* :class:`MoreByStd`: a beats b (higher, or lower, is better) by more than one standard
  deviation over seeds, the larger of the two: confirmed; loses by more: contradicted; else
  not reproduced.
* :class:`NotWorseBy`: a's mean is at most ``margin`` below b's: confirmed, else contradicted.
* :class:`SpanBelow`: the means at the given values of a key span less than ``width``.
* :class:`PerCase`: another rule in each case of a key (e.g. per model), the verdicts
  :func:`combined`.
* :class:`Named`: a rule of its own (a function and the text of what it decides), for a claim
  the vocabulary cannot say.

Each rule writes its own text (``rule.text``) from the same parameters its code uses. Means and
standard deviations are over the seeds that did not diverge
(:func:`bnlab.results.analysis.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd

from bnlab.results.analysis import summary
from bnlab.results.tables import markdown, per_seed, select, with_variant

CONFIRMED, CONTRADICTED, NOT_REPRODUCED = "confirmed", "contradicted", "not reproduced here"
NOT_FULL_SCALE = "not at full scale"  # decided from a GPU-scale experiment's CPU budget
COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def final(df, split="val", metric="accuracy", late=False, **where) -> tuple[float, float]:
    """(mean, std) over seeds of the final ``split/metric`` of the runs selected by ``where``
    (:func:`bnlab.results.tables.select`; ``variant`` selects by the normalization's name)."""
    mean, std, _, _ = summary(select(per_seed(with_variant(df), split, metric, late), **where))
    return mean, std


def pm(value: tuple[float, float], digits: int = 3) -> str:
    """``mean +/- std``."""
    return f"{value[0]:.{digits}f} +/- {value[1]:.{digits}f}"


def number(value: float) -> str:
    """A value as a claim writes it: 1e-8, 1e-3, 0.03, 0.5, 3."""
    power = f"{value:.0e}"  # one significant digit: 1e-03
    small = 0 < abs(value) < 0.01 and float(power) == value
    return (power if small else f"{value:g}").replace("e-0", "e-")


def compare(a: tuple[float, float], b: tuple[float, float]) -> str:
    """The verdict that mean a > mean b, from two (mean, std) pairs: not reproduced when the
    means are within the larger std of each other; "-" when either is missing."""
    if np.isnan(a[0]) or np.isnan(b[0]):
        return "-"
    spread = np.nanmax([a[1], b[1], 0.0])
    if abs(a[0] - b[0]) <= spread:
        return NOT_REPRODUCED
    return CONFIRMED if a[0] > b[0] else CONTRADICTED


def deeper(a: float, b: float) -> str:
    """The verdict that depth ``a`` (NaN: 0) is more than depth ``b``."""
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    return CONFIRMED if a > b else (CONTRADICTED if a < b else NOT_REPRODUCED)


def combined(names: Sequence[str], verdicts: Sequence[str]) -> str:
    """One verdict when every case agrees, else ``mixed: <case> <verdict>, ...``."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    return "mixed: " + ", ".join(f"{n} {v}" for n, v in zip(names, verdicts))


class Rule(Protocol):
    """Decides a claim from its experiment's runs."""

    text: str  # what the rule decides, for the ledger's "rule" column

    def measure(self, df: pd.DataFrame) -> tuple[str, str]:
        """(what was measured, the verdict)."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its label in the ledger and the runs it means (config keys
    with dots as double underscores; ``variant`` for the normalization's name)."""

    label: str
    where: Mapping[str, object]


def side(label: str, **where) -> Side:
    return Side(label, where)


@dataclass(frozen=True)
class Comparison:
    """Two sides' (mean, std) of the final ``split/metric``, written as
    ``<quantity> <a> <value>, <b> <value>`` (``with_std``: ``mean +/- std``, else the mean)."""

    quantity: str
    a: Side
    b: Side
    split: str = "val"
    metric: str = "accuracy"
    late: bool = False
    digits: int = 3
    with_std: bool = True

    def values(self, df) -> tuple[tuple[float, float], tuple[float, float]]:
        args = (self.split, self.metric, self.late)
        return final(df, *args, **self.a.where), final(df, *args, **self.b.where)

    def written(self, a, b) -> str:
        def value(v):
            return pm(v, self.digits) if self.with_std else f"{v[0]:.{self.digits}f}"

        return f"{self.quantity} {self.a.label} {value(a)}, {self.b.label} {value(b)}"


@dataclass(frozen=True)
class MoreByStd(Comparison):
    """Confirmed if a is better than b (``better``: "higher" or "lower") by more than the
    larger std over seeds, contradicted if worse by more, else not reproduced."""

    better: str = "higher"
    text: str = "confirmed if the difference goes the claim's way by more than 1 std over seeds"
    short = "the 1-std rule"

    def measure(self, df) -> tuple[str, str]:
        a, b = self.values(df)
        return self.written(a, b), compare(a, b) if self.better == "higher" else compare(b, a)


@dataclass(frozen=True)
class NotWorseBy(Comparison):
    """Confirmed if a's mean >= b's mean - ``margin``, else contradicted."""

    margin: float = 0.0
    with_std: bool = False

    @property
    def text(self) -> str:
        return f"confirmed if {self.a.label} is within {number(self.margin)} of {self.b.label}"

    short = text

    def measure(self, df) -> tuple[str, str]:
        a, b = self.values(df)
        if np.isnan(a[0]) or np.isnan(b[0]):
            return self.written(a, b), "-"
        ok = a[0] >= b[0] - self.margin
        return self.written(a, b), CONFIRMED if ok else CONTRADICTED


@dataclass(frozen=True)
class SpanBelow:
    """Confirmed if the mean final ``split/metric`` at each of ``values`` of ``key`` (among the
    runs selected by ``where``) spans less than ``width``, else contradicted."""

    key: str
    values: Sequence[float]
    width: float
    label: str  # the key's name in the measured text
    context: str = ""  # what ``where`` selects, as written after the values
    where: Mapping[str, object] = field(default_factory=dict)
    quantity: str = "val accuracy"

    @property
    def text(self) -> str:
        count = COUNT_WORDS.get(len(self.values), str(len(self.values)))
        return f"confirmed if the {count} means span less than {number(self.width)}"

    def measure(self, df) -> tuple[str, str]:
        df = select(df, **self.where)
        means = [final(df, **{self.key.replace(".", "__"): v})[0] for v in self.values]
        names = " / ".join(number(v) for v in self.values)
        measured = f"{self.quantity} at {self.label} {names}{self.context}: " + " / ".join(
            f"{m:.3f}" for m in means
        )
        if any(np.isnan(m) for m in means):  # a value without runs decides nothing
            return measured, "-"
        return measured, CONFIRMED if max(means) - min(means) < self.width else CONTRADICTED


@dataclass(frozen=True)
class PerCase:
    """``rule`` on the runs of each case (a value of config ``key`` and its name); the measured
    texts joined, the verdicts :func:`combined` (``mixed`` when the cases differ)."""

    key: str
    cases: Sequence[tuple[object, str]]
    rule: Rule
    noun: str = "model"

    @property
    def text(self) -> str:
        count = COUNT_WORDS.get(len(self.cases), str(len(self.cases)))
        short = getattr(self.rule, "short", self.rule.text)
        return f"per {self.noun}, {short}; mixed when the {count} {self.noun}s differ"

    def measure(self, df) -> tuple[str, str]:
        texts, verdicts = [], []
        for value, name in self.cases:
            measured, verdict = self.rule.measure(select(df, **{self.key: value}))
            texts.append(f"{name} {measured}")
            verdicts.append(verdict)
        return "; ".join(texts), combined([name for _, name in self.cases], verdicts)


@dataclass(frozen=True)
class Named:
    """A rule of its own: ``decide(df) -> (measured, verdict)``, and the text of what it
    decides (written from the same constants its code uses)."""

    decide: Callable[[pd.DataFrame], tuple[str, str]]
    text: str

    def measure(self, df) -> tuple[str, str]:
        return self.decide(df)


@dataclass(frozen=True)
class Claim:
    """A claim about BN, where it comes from, the figure that shows it and how it is decided."""

    text: str
    source: str
    figure: str
    rule: Rule


def ledger(
    claims: Sequence[tuple[str, Claim]],
    runs: Callable[[str], pd.DataFrame | None],
    earlier: Mapping[str, list[str]] | None = None,
) -> str:
    """The ledger as a Markdown table: one row per (experiment, claim), decided from
    ``runs(experiment)``; where that is None (no runs here), the claim's row in ``earlier``
    (claim text -> its cells, as the page had it), else "no runs yet"."""
    rows, earlier = [], earlier or {}
    for experiment, claim in claims:
        df = runs(experiment)
        if df is None and claim.text in earlier:  # decided elsewhere: kept as it was
            rows.append(earlier[claim.text])
            continue
        if df is None:
            measured, verdict = f"no runs yet ({experiment})", "-"
        else:
            try:
                measured, verdict = claim.rule.measure(df)
            except (KeyError, ValueError, IndexError) as exc:  # runs of another shape
                measured, verdict = f"cannot be measured from these runs ({exc})", "-"
        config = df.attrs.get("config", experiment) if df is not None else experiment
        scale = f" ({NOT_FULL_SCALE})" if config != experiment else ""  # a CPU budget's runs
        figure = f"{claim.figure}; `python run.py +experiment={config}`"
        verdict = f"**{verdict}**{scale}"
        rows.append([claim.text, claim.source, verdict, measured, claim.rule.text, figure])
    header = ["claim", "source", "verdict here", "measured", "rule", "figure; command"]
    return markdown(header, rows)
