"""Quadrature rules on [0, 1] for the path integral (the same rules Captum offers)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from igkit.errors import IGInputError
from igkit.options import MAX_PATH_POINTS

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
#: up to here numpy's eigenvalue method is exact and quick; beyond it costs O(n³) (10,000 points:
#: minutes), so larger rules use Newton's method on the three-term recurrence (O(n) per node)
_EIGENVALUE_LIMIT = 100


def quadrature(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes α and weights w with Σ w·g(α) ≈ ∫₀¹ g(α) dα, in float64."""
    if method not in RULES:
        raise IGInputError(f"unknown integration method {method!r}; choose one of {', '.join(RULES)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise IGInputError(f"steps must be a whole number ≥ 1, got {steps!r}")
    n = int(steps)
    if n > MAX_PATH_POINTS:
        raise IGInputError(f"steps={n} is above igkit's limit of {MAX_PATH_POINTS} path points (the "
                           f"paper uses 20-300); use adaptive integration (tolerance=) to get the accuracy "
                           f"you need with the points it needs")
    if method == "gausslegendre":
        nodes, weights = _gauss_legendre(n)
        return nodes.copy(), weights.copy()
    if method == "riemann_trapezoid":
        if n < 2:
            raise IGInputError("the trapezoid rule needs steps ≥ 2 (both ends of the path)")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, n), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n) + offset) / n, np.full(n, 1.0 / n)


@lru_cache(maxsize=32)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1], ascending (cached: every item of a run asks)."""
    if n <= _EIGENVALUE_LIMIT:
        nodes, weights = np.polynomial.legendre.leggauss(n)
    else:
        nodes, weights = _newton_legendre(n)
    return 0.5 * (nodes + 1.0), 0.5 * weights


def _newton_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Roots of P_n on [−1, 1] by Newton's method from Tricomi's asymptotic guesses, all at once."""
    k = np.arange(1, n + 1)
    theta = np.pi * (4 * k - 1) / (4 * n + 2)
    x = np.cos(theta) * (1 - (n - 1) / (8 * n ** 3))
    for _ in range(100):
        p, derivative = _legendre_and_derivative(n, x)
        step = p / derivative
        x -= step
        if np.max(np.abs(step)) < 1e-15:
            break
    _, derivative = _legendre_and_derivative(n, x)
    weights = 2.0 / ((1 - x ** 2) * derivative ** 2)
    return x[::-1].copy(), weights[::-1].copy()


def _legendre_and_derivative(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    previous, current = np.ones_like(x), x.copy()
    for j in range(2, n + 1):
        previous, current = current, ((2 * j - 1) * x * current - (j - 1) * previous) / j
    return current, n * (x * current - previous) / (x ** 2 - 1)
