"""The integration defaults, in one place: every CLI route, the Python API and each domain read them.

Unless a step count is asked for, igkit integrates adaptively until the completeness
error is within ``tolerance`` of F(x) − F(baseline), or within an absolute floor
(``floor`` × ``tolerance`` × the score's own magnitude) where that difference is so
small that a relative error means nothing. A domain overrides a default by declaring
its own :class:`Integration` (the text domain asks for 0.1%).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

#: relative completeness error that adaptive integration aims for unless told otherwise
DEFAULT_TOLERANCE = 0.01
#: the absolute floor as a fraction of tolerance × max(|F(x)|, |F(b)|). An untrained ImageNet
#: classifier has F ≈ 1e-3 and F(x) − F(b) ≈ 5e-10: no ratio to that means anything, but an error
#: below 1e-9 is exact enough. Small enough that a molecule with ΔF = 2e-6 at F ≈ 0.5 still
#: integrates to 1% (the floor there is 5e-7)
DEFAULT_FLOOR = 1e-4
#: the per-feature error accepted (estimated relative L2 error of the attributions,
#: :meth:`igkit.attribution.nested_grid.NestedGrid.feature_errors`), as a multiple of the completeness
#: tolerance: completeness bounds the attributions' sum only, and a grid that passed it alone was off by
#: 0.207 per feature on the bench's ReLU CNN (Captum doubling its steps to the same completeness: 0.044 at
#: worst). The estimate overstates the error it bounds (about 2× at the CNN's ReLU kinks, 2–10× where F
#: is smooth), so at 5× every bench model's worst per-feature error was at or below Captum's
#: (bench/README.md, case 3)
FEATURE_TOLERANCE_FACTOR = 5.0
DEFAULT_MAX_STEPS = 1024
#: the most path points a fixed rule (``steps``) or an adaptive cap (``max_steps``) may ask for: the
#: paper used 20-300 and adaptive integration reaches 0.1% within a few hundred on every bundled model.
#: A result keeps α and F at every point, so its size grows with the count; a bound keeps it small
MAX_PATH_POINTS = 10_000
#: how the adaptive grid starts: ``forward`` plans it from F on 17 points (forward passes only), then
#: evaluates gradients in one pass; ``off`` starts from five points and refines one pass per round;
#: ``auto`` plans for recurrent models (on the PTB LSTM 1.15× the 5-point start's speed) and otherwise
#: starts from a grid sized by a path point's input (9 points where points are small, ends eased in where
#: one point fills a pass: :mod:`igkit.attribution.first_grid`)
DEFAULT_PLAN = "auto"
PLANS = ("auto", "forward", "off")
#: the step count of a fixed rule when a rule is named without one (the paper's 20-300 range)
DEFAULT_FIXED_STEPS = 50
DEFAULT_RULE = "gausslegendre"


@dataclass(frozen=True)
class Integration:
    """How the path integral is computed: a fixed rule (``steps``) or adaptive (``tolerance``)."""

    steps: int | None = None
    method: str = DEFAULT_RULE
    tolerance: float = DEFAULT_TOLERANCE
    feature_tolerance: float | None = None    # None: FEATURE_TOLERANCE_FACTOR × tolerance
    floor: float = DEFAULT_FLOOR
    max_steps: int = DEFAULT_MAX_STEPS
    batch_size: int | None = None
    plan: str = DEFAULT_PLAN

    @property
    def adaptive(self) -> bool:
        return self.steps is None

    def with_overrides(self, **changes: Any) -> "Integration":
        """A copy with the options the user actually gave (``None`` means: keep the default)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validated(self) -> "Integration":
        """This object, or an ``IGInputError`` naming the option that would fail every item."""
        from igkit.errors import IGInputError

        for name in ("steps", "max_steps", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise IGInputError(f"{name} must be a whole number ≥ 1, got {value!r}")
        for name in ("steps", "max_steps"):
            value = getattr(self, name)
            if value is not None and value > MAX_PATH_POINTS:
                raise IGInputError(f"{name}={value} is above the limit of {MAX_PATH_POINTS} path points; "
                                   f"adaptive integration (--tolerance) reaches 0.1% with far fewer")
        if not self.tolerance > 0:
            raise IGInputError(f"tolerance must be > 0, got {self.tolerance!r}")
        if self.feature_tolerance is not None and not self.feature_tolerance > 0:
            raise IGInputError(f"feature_tolerance must be > 0, got {self.feature_tolerance!r}")
        if not self.floor >= 0:
            raise IGInputError(f"floor must be ≥ 0, got {self.floor!r}")
        check_plan(self.plan)
        return self

    def keywords(self) -> dict[str, Any]:
        """Keyword arguments for :func:`igkit.integrated_gradients`."""
        if self.adaptive:
            return {"tolerance": self.tolerance, "feature_tolerance": self.feature_tolerance, "floor": self.floor,
                    "max_steps": self.max_steps, "batch_size": self.batch_size, "plan": self.plan}
        return {"steps": self.steps, "method": self.method, "batch_size": self.batch_size}

    def describe(self) -> dict[str, Any]:
        """What goes into a run's fingerprint and ``summary.json`` (no pass size: it changes nothing)."""
        fields = asdict(self)
        fields.pop("batch_size")
        if self.adaptive:
            fields.pop("steps")
            fields.pop("method")
        else:
            for key in ("tolerance", "feature_tolerance", "floor", "max_steps", "plan"):
                fields.pop(key)
        return fields


def check_plan(plan: str) -> str:
    """``plan`` itself, or an error listing the choices."""
    if plan not in PLANS:
        from igkit.errors import IGInputError

        raise IGInputError(f"plan must be one of {', '.join(PLANS)} (forward: plan the grid with forward "
                           f"passes; off: the plain adaptive grid; auto: plan for recurrent models), "
                           f"got {plan!r}")
    return plan
