"""The elongated-loss-surface demo (loss_surface.png): no training needed.

Top: gradient descent from the same start with the same step size on the elongated
h1 = x^2/20 + y^2 (zig-zags) and the round h2 = x^2 + y^2 (goes straight), with the steps each
needs to come within a tolerance of the minimum. Bottom left: the measured per-step contraction
at the best step size against the theory (k-1)/(k+1). Bottom right: the four optimizers of
Saito's Deep Learning from Scratch (ch. 6) on h1, 30 steps from (-7, 2).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bnlab.results.figures import save
from bnlab.results.surfaces import (
    BOOK_OPTIMIZERS,
    H1,
    H2,
    START,
    Quadratic,
    gradient_descent,
    measured_contraction,
    optimizer_path,
    steps_to_tolerance,
)

LR = 0.8
TOL = 1e-3


def _contours(ax, h, title):
    x, y = np.meshgrid(np.linspace(-10, 10, 300), np.linspace(-5, 5, 200))
    ax.contour(x, y, h(x, y), levels=np.geomspace(0.05, 60, 14), colors="0.6", linewidths=0.7)
    ax.plot(0, 0, "+", color="black", ms=10)
    ax.set_xlim(-10, 10)
    ax.set_ylim(-5, 5)
    ax.set_aspect("equal")
    ax.set_title(title)


def draw(out: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for ax, h, name in (
        (axes[0, 0], H1, "h1 = x²/20 + y²  (elongated, k = 20)"),
        (axes[0, 1], H2, "h2 = x² + y²  (round, k = 1)"),
    ):
        path = gradient_descent(h, LR, tol=TOL, steps=5000)
        steps = steps_to_tolerance(path, TOL)
        _contours(ax, h, name)
        ax.plot(path[:, 0], path[:, 1], "o-", color="red", ms=3, lw=1)
        ax.text(
            0.02,
            0.03,
            f"gradient descent, lr {LR}: {steps} steps to |p| < {TOL:g}",
            transform=ax.transAxes,
            color="red",
            fontsize=10,
            bbox=dict(facecolor="white", alpha=0.8, lw=0),
        )
    ks = np.array([1, 1.5, 2, 3, 5, 10, 20, 50, 100])
    theory = np.linspace(1, 100, 400)
    ax = axes[1, 0]
    ax.plot(theory, (theory - 1) / (theory + 1), color="black", label="theory (k-1)/(k+1)")
    ax.plot(
        ks,
        [measured_contraction(Quadratic(1 / k, 1.0)) for k in ks],
        "o",
        color="red",
        label="measured: gradient descent at its best step size",
    )
    for k, h in ((20, H1), (1, H2)):
        ax.annotate(
            f"h{1 if k == 20 else 2}: {measured_contraction(h):.3f}",
            (k, h.theory_contraction),
            textcoords="offset points",
            xytext=(8, -14),
        )
    ax.set_xscale("log")
    ax.set_xlabel("condition number k of the quadratic")
    ax.set_ylabel("distance to minimum: factor per step")
    ax.set_title("rounder surface, faster descent")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax = axes[1, 1]
    _contours(ax, H1, "Saito's four optimizers on h1 (30 steps)")
    for (name, (cls, kwargs)), colour in zip(
        BOOK_OPTIMIZERS.items(), ("red", "tab:blue", "tab:green", "tab:purple")
    ):
        path = optimizer_path(H1, cls, kwargs)
        ax.plot(
            path[:, 0],
            path[:, 1],
            "o-",
            color=colour,
            ms=2.5,
            lw=1,
            label=f"{name}: h = {H1(*path[-1]):.2g}",
        )
    ax.plot(*START, "ks", ms=6)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Why a rounder loss surface helps: the blog post's h1 vs h2")
    fig.tight_layout()
    return save(fig, out / "loss_surface.png")
