"""The loss-surface demo against the theory: contraction (k-1)/(k+1), zig-zag vs straight."""

import numpy as np
import pytest

from bnlab.results.surfaces import (
    BOOK_OPTIMIZERS,
    H1,
    H2,
    Quadratic,
    gradient_descent,
    measured_contraction,
    optimizer_path,
    steps_to_tolerance,
)


def test_condition_numbers_and_best_step_sizes():
    assert H1.condition == pytest.approx(20) and H2.condition == 1
    assert H1.best_lr == pytest.approx(2 / 2.1) and H2.best_lr == pytest.approx(0.5)


@pytest.mark.parametrize("k", [1, 2, 5, 20, 100])
def test_measured_contraction_equals_theory(k):
    h = Quadratic(1.0 / k, 1.0)
    assert measured_contraction(h) == pytest.approx((k - 1) / (k + 1), abs=1e-9)


def test_best_fixed_step_is_best():
    """Any other step size contracts h1 more slowly than lr* (measured over 60 steps)."""

    def rate(lr):
        path = gradient_descent(H1, lr, steps=60)
        return (np.linalg.norm(path[-1]) / np.linalg.norm(path[0])) ** (1 / 60)

    best = rate(H1.best_lr)
    for lr in (0.3, 0.6, 0.9, 0.99):
        assert rate(lr) > best - 1e-12


def test_zig_zag_on_h1_and_straight_on_h2():
    lr = 0.8
    p1 = gradient_descent(H1, lr, steps=20)
    p2 = gradient_descent(H2, lr, steps=20)
    assert np.all(np.sign(p1[1:, 1]) != np.sign(p1[:-1, 1]))  # y flips sign every step
    cross = p2[:, 0] * 2.0 - p2[:, 1] * -7.0  # all points on the line through start and 0
    assert np.allclose(cross, 0)
    n1 = steps_to_tolerance(gradient_descent(H1, lr, tol=1e-3), 1e-3)
    n2 = steps_to_tolerance(gradient_descent(H2, lr, tol=1e-3), 1e-3)
    assert n2 < n1 / 3


def test_book_optimizers_approach_the_minimum():
    for name, (cls, kwargs) in BOOK_OPTIMIZERS.items():
        path = optimizer_path(H1, cls, kwargs)
        assert path.shape == (31, 2)
        assert H1(*path[-1]) < H1(*path[0]) / 10, name


def test_momentum_matches_the_books_update_rule():
    """torch's SGD momentum (buf = mu*buf + g; p -= lr*buf) equals Saito's v = mu*v - lr*g."""
    cls, kwargs = BOOK_OPTIMIZERS["Momentum (lr 0.1, 0.9)"]
    path = optimizer_path(H1, cls, kwargs, steps=10)
    p, v = np.array([-7.0, 2.0]), np.zeros(2)
    for t in range(10):
        v = 0.9 * v - 0.1 * H1.grad(p)
        p = p + v
        np.testing.assert_allclose(path[t + 1], p, rtol=1e-12)
