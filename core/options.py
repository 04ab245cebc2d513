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
#: the absolute floor as a fraction of tolerance × max(|F(x)|, |F(b)|): with F(x) = 0.3 and
#: F(b) = 0.3 + 1e-9 the relative error is noise, and an error of 3e-6 is already exact enough
DEFAULT_FLOOR = 1e-3
DEFAULT_MAX_STEPS = 1024
#: the step count of a fixed rule when a rule is named without one (the paper's 20-300 range)
DEFAULT_FIXED_STEPS = 50
DEFAULT_RULE = "gausslegendre"


@dataclass(frozen=True)
class Integration:
    """How the path integral is computed: a fixed rule (``steps``) or adaptive (``tolerance``)."""

    steps: int | None = None
    method: str = DEFAULT_RULE
    tolerance: float = DEFAULT_TOLERANCE
    floor: float = DEFAULT_FLOOR
    max_steps: int = DEFAULT_MAX_STEPS
    batch_size: int | None = None

    @property
    def adaptive(self) -> bool:
        return self.steps is None

    def with_overrides(self, **changes: Any) -> "Integration":
        """A copy with the options the user actually gave (``None`` means: keep the default)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def keywords(self) -> dict[str, Any]:
        """Keyword arguments for :func:`igkit.integrated_gradients`."""
        if self.adaptive:
            return {"tolerance": self.tolerance, "floor": self.floor, "max_steps": self.max_steps,
                    "batch_size": self.batch_size}
        return {"steps": self.steps, "method": self.method, "batch_size": self.batch_size}

    def describe(self) -> dict[str, Any]:
        """What goes into a run's fingerprint and ``summary.json`` (no pass size: it changes nothing)."""
        fields = asdict(self)
        fields.pop("batch_size")
        if self.adaptive:
            fields.pop("steps")
            fields.pop("method")
        else:
            for key in ("tolerance", "floor", "max_steps"):
                fields.pop(key)
        return fields
