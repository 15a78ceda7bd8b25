"""The claims' rule vocabulary decides from the seeds' numbers as its text says."""

import pandas as pd
import pytest

from bnlab.results.claims import (
    CONFIRMED,
    CONTRADICTED,
    NOT_REPRODUCED,
    MoreByStd,
    NotWorseBy,
    PerCase,
    SpanBelow,
    side,
)


def runs(cells: dict) -> pd.DataFrame:
    """Runs in load_runs' long format: ``cells`` maps (kind, model, eps) to the final val
    accuracies of its seeds (NaN: a diverged seed)."""
    rows = []
    for (kind, model, eps), values in cells.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "run": f"{kind},{model},{eps},{seed}",
                    "status": "diverged" if pd.isna(value) else "completed",
                    "step": 100,
                    "split": "val",
                    "metric": "accuracy",
                    "value": value,
                    "norm.kind": kind,
                    "norm.noise": 0.0,
                    "norm.affine": True,
                    "norm.eps": eps,
                    "model.name": model,
                    "seed": seed,
                }
            )
    return pd.DataFrame(rows)


BN, NO_BN = side("BN", variant="bn"), side("no BN", variant="none")


@pytest.mark.parametrize(
    ("bn", "none", "better", "verdict"),
    [
        ([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], "higher", CONFIRMED),
        ([0.80, 0.81, 0.82], [0.90, 0.91, 0.92], "higher", CONTRADICTED),
        ([0.80, 0.85, 0.90], [0.82, 0.84, 0.86], "higher", NOT_REPRODUCED),  # within 1 std
        ([0.80, 0.81, 0.82], [0.90, 0.91, 0.92], "lower", CONFIRMED),
        ([0.90, 0.91, float("nan")], [0.80, 0.81, 0.82], "higher", CONFIRMED),  # diverged: out
    ],
)
def test_more_by_std_decides_by_one_standard_deviation(bn, none, better, verdict):
    df = runs({("bn", "mlp", 1e-5): bn, ("none", "mlp", 1e-5): none})
    rule = MoreByStd("val accuracy", BN, NO_BN, better=better)
    measured, decided = rule.measure(df)
    assert decided == verdict
    mean = pd.Series(bn).dropna()
    assert measured.startswith(f"val accuracy BN {mean.mean():.3f} +/- {mean.std():.3f}, no BN")
    assert rule.text.endswith("by more than 1 std over seeds")


def test_not_worse_by_allows_the_margin_and_says_so():
    df = runs({("bn", "mlp", 1e-5): [0.90, 0.90], ("none", "mlp", 1e-5): [0.875, 0.875]})
    near = NotWorseBy("val accuracy", NO_BN, BN, margin=0.03)
    far = NotWorseBy("val accuracy", NO_BN, BN, margin=0.02)
    assert near.measure(df) == ("val accuracy no BN 0.875, BN 0.900", CONFIRMED)
    assert far.measure(df)[1] == CONTRADICTED
    assert near.text == "confirmed if no BN is within 0.03 of BN"


def test_span_below_compares_the_means_at_the_named_values():
    df = runs({("bn", "mlp", e): [0.90 + d, 0.90 + d] for e, d in ((1e-8, 0), (1e-5, 0.005))})
    rule = SpanBelow("norm.eps", (1e-8, 1e-5), width=0.01, label="eps")
    assert rule.measure(df) == ("val accuracy at eps 1e-8 / 1e-5: 0.900 / 0.905", CONFIRMED)
    assert SpanBelow("norm.eps", (1e-8, 1e-5), 0.004, "eps").measure(df)[1] == CONTRADICTED
    assert rule.text == "confirmed if the two means span less than 0.01"


def test_per_case_says_mixed_when_the_cases_disagree():
    df = runs(
        {
            ("bn", "mlp", 1e-5): [0.90, 0.91],
            ("none", "mlp", 1e-5): [0.80, 0.81],
            ("bn", "cnn", 1e-5): [0.80, 0.81],
            ("none", "cnn", 1e-5): [0.90, 0.91],
        }
    )
    rule = PerCase("model__name", (("mlp", "MLP"), ("cnn", "CNN")), MoreByStd("acc", BN, NO_BN))
    measured, verdict = rule.measure(df)
    assert verdict == "mixed: MLP confirmed, CNN contradicted"
    assert measured.startswith("MLP acc BN 0.905") and "; CNN acc BN 0.805" in measured
    assert rule.text == "per model, the 1-std rule; mixed when the two models differ"
    same = PerCase("model__name", (("mlp", "MLP"),), MoreByStd("acc", BN, NO_BN))
    assert same.measure(df)[1] == CONFIRMED


def test_a_side_without_runs_decides_nothing():
    df = runs({("bn", "mlp", 1e-5): [0.90, 0.90]})  # no runs of "none", none at eps 1e-8
    assert NotWorseBy("val accuracy", NO_BN, BN, margin=0.03).measure(df)[1] == "-"
    assert SpanBelow("norm.eps", (1e-8, 1e-5), 0.01, "eps").measure(df)[1] == "-"
    assert MoreByStd("val accuracy", BN, NO_BN).measure(df)[1] == "-"
