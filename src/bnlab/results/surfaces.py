"""The elongated-loss-surface intuition, computed: gradient descent on 2-D quadratics.

For h(x, y) = a*x^2 + b*y^2 the Hessian is diag(2a, 2b); its condition number is
k = max(a, b) / min(a, b). Gradient descent p <- p - lr * grad h(p) multiplies each coordinate
by (1 - lr * 2a) and (1 - lr * 2b). At the best fixed step size lr* = 2 / (2a + 2b) both
factors have magnitude (k - 1) / (k + 1), so the distance to the minimum shrinks by exactly that
per step: 19/21 ~ 0.905 for the elongated h1 = x^2/20 + y^2 (k = 20), 0 for the round
h2 = x^2 + y^2 (k = 1, one step). A step size large enough to make progress along the flat
direction of h1 overshoots along the steep one: the path zig-zags; on h2 it goes straight.
BN's promise, in this picture, is to make the loss surface of a network rounder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

START = (-7.0, 2.0)  # Saito, Deep Learning from Scratch, ch. 6
# The book's four optimizers on h1, 30 steps each: (torch optimizer, its arguments).
BOOK_OPTIMIZERS = {
    "SGD (lr 0.95)": (torch.optim.SGD, {"lr": 0.95}),
    "Momentum (lr 0.1, 0.9)": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "AdaGrad (lr 1.5)": (torch.optim.Adagrad, {"lr": 1.5}),
    "Adam (lr 0.3)": (torch.optim.Adam, {"lr": 0.3}),
}


@dataclass(frozen=True)
class Quadratic:
    """h(x, y) = a * x^2 + b * y^2, minimum 0 at the origin."""

    a: float
    b: float

    def __call__(self, x, y):
        return self.a * x**2 + self.b * y**2

    def grad(self, p: np.ndarray) -> np.ndarray:
        return np.array([2 * self.a * p[0], 2 * self.b * p[1]])

    @property
    def condition(self) -> float:
        return max(self.a, self.b) / min(self.a, self.b)

    @property
    def best_lr(self) -> float:
        """2 / (lambda_min + lambda_max), the step size that minimizes the worst contraction."""
        return 2.0 / (2 * self.a + 2 * self.b)

    @property
    def theory_contraction(self) -> float:
        k = self.condition
        return (k - 1) / (k + 1)


H1 = Quadratic(1 / 20, 1.0)  # elongated, k = 20
H2 = Quadratic(1.0, 1.0)  # round, k = 1


def gradient_descent(
    h: Quadratic, lr: float, start=START, steps: int = 1000, tol: float | None = None
) -> np.ndarray:
    """The path (n + 1, 2) of plain gradient descent; stops early once ||p|| < tol."""
    p = np.asarray(start, dtype=float)
    path = [p]
    for _ in range(steps):
        if tol is not None and np.linalg.norm(p) < tol:
            break
        p = p - lr * h.grad(p)
        path.append(p)
    return np.array(path)


def steps_to_tolerance(path: np.ndarray, tol: float) -> int | None:
    """Index of the first point within ``tol`` of the minimum (None if never)."""
    hits = np.flatnonzero(np.linalg.norm(path, axis=1) < tol)
    return int(hits[0]) if len(hits) else None


def measured_contraction(h: Quadratic, steps: int = 50, start=START) -> float:
    """Geometric mean of ||p_{t+1}|| / ||p_t|| over gradient descent at the best step size."""
    path = gradient_descent(h, h.best_lr, start, steps)
    norms = np.linalg.norm(path, axis=1)
    if norms[1] == 0:  # converged in one step (k = 1)
        return 0.0
    live = norms[norms > 1e-250]
    return float((live[-1] / live[0]) ** (1 / (len(live) - 1)))


def optimizer_path(
    h: Quadratic, optimizer_cls, kwargs: dict, steps: int = 30, start=START
) -> np.ndarray:
    """The path of a ``torch.optim`` optimizer minimizing h from ``start``: (steps + 1, 2)."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = optimizer_cls([p], **kwargs)
    path = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        h(p[0], p[1]).backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)
