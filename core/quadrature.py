"""Quadrature rules on [0, 1] for the path integral (the same rules Captum offers)."""
from __future__ import annotations

import numpy as np

from .errors import IGInputError

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def quadrature(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes α and weights w with Σ w·g(α) ≈ ∫₀¹ g(α) dα, in float64."""
    if method not in RULES:
        raise IGInputError(f"unknown integration method {method!r}; choose one of {', '.join(RULES)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise IGInputError(f"steps must be a whole number ≥ 1, got {steps!r}")
    n = int(steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if method == "riemann_trapezoid":
        if n < 2:
            raise IGInputError("the trapezoid rule needs steps ≥ 2 (both ends of the path)")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, n), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n) + offset) / n, np.full(n, 1.0 / n)
