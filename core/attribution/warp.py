"""Where a planned path puts its gradient points: a map u -> α drawn from the plan's F.

∫ dF/dα dα over [0, 1] equals ∫ dF/dα(φ(u)) φ'(u) du for any increasing φ with φ(0) = 0 and
φ(1) = 1, and the attributions follow the same change of variables feature by feature. When
equal steps in u cover equal shares of |ΔF| (plus a uniform share, so no part of the path goes
unseen: gradients can move where F does not), the integrand in u is nearly flat, and a coarse
nested grid in u meets the tolerance. On the bench's ReLU CNN this took 96 gradient points
where the uniform grid took 164 (bench/README.md, case 3).

The ends are eased in (φ'(0) = φ'(1) = 0). A gradient at exactly α = 0 is often not the limit
of its neighbours (a constant image ties every max-pool window; the tie-break routes the
gradient elsewhere than any α > 0 does), and with zero weight there it need not be evaluated
at all: F at the ends comes from the plan's forward pass.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

#: resolution of the planned density (shares of the mean slope are rounded to 1/DENSITY_STEPS)
DENSITY_STEPS = 64


class UniformPath:
    """The identity map: u is α (the unplanned grid)."""

    eased_ends = False

    def alpha(self, u: float) -> float:
        return u

    def speed(self, u: float) -> float:
        return 1.0


class PlannedPath:
    """φ = C⁻¹ ∘ ease, where C is the cumulative of a density that is piecewise linear in α between
    the plan's points, and ease(u) = 3u² − 2u³ makes φ' vanish at both ends."""

    eased_ends = True

    def __init__(self, density: np.ndarray):
        if density.ndim != 1 or density.size < 2 or not np.all(density > 0):
            raise ValueError(f"a path density needs ≥ 2 positive values at its knots, got {density!r}")
        self.spacing = 1.0 / (density.size - 1)
        cumulative = np.concatenate([[0.0], np.cumsum((density[:-1] + density[1:]) / 2 * self.spacing)])
        self.density = (density / cumulative[-1]).tolist()   # normalised: C(1) = 1
        self.cumulative = (cumulative / cumulative[-1]).tolist()

    @classmethod
    def from_plan(cls, scores: np.ndarray, uniform_share: float) -> PlannedPath:
        """The density at each plan point: the larger |slope| of F on its two sides, as a share of
        the mean, mixed with ``uniform_share`` of the uniform density (all uniform where F is flat).

        The shares are rounded to 1/64: F from passes of another size differs in its last bits,
        and the path (so the answer) must not (a coarser density places points as well)."""
        slopes = np.abs(np.diff(scores))
        steep = np.maximum(np.concatenate([slopes[:1], slopes]), np.concatenate([slopes, slopes[-1:]]))
        mean = float(steep.mean())
        if not mean > 0 or not math.isfinite(mean):
            return cls(np.ones(scores.size))
        shares = np.round(steep / mean * DENSITY_STEPS) / DENSITY_STEPS
        return cls((1.0 - uniform_share) * shares + uniform_share)

    def alpha(self, u: float) -> float:
        if u <= 0.0 or u >= 1.0:
            return 0.0 if u <= 0.0 else 1.0
        v = u * u * (3.0 - 2.0 * u)
        j = min(max(bisect.bisect_right(self.cumulative, v) - 1, 0), len(self.density) - 2)
        rest = v - self.cumulative[j]
        low, high = self.density[j], self.density[j + 1]
        rise = (high - low) / self.spacing
        # the root x of low·x + rise·x²/2 = rest, in the form that is stable for rise → 0
        x = 2.0 * rest / (low + math.sqrt(max(low * low + 2.0 * rise * rest, 0.0)))
        return min(max(j * self.spacing + x, 0.0), 1.0)

    def speed(self, u: float) -> float:
        """dα/du at u (0 at the ends)."""
        if u <= 0.0 or u >= 1.0:
            return 0.0
        a = self.alpha(u)
        j = min(int(a / self.spacing), len(self.density) - 2)
        at = self.density[j] + (self.density[j + 1] - self.density[j]) * (a - j * self.spacing) / self.spacing
        return 6.0 * u * (1.0 - u) / at
