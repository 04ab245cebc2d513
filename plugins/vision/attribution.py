"""Everything the paper computes for one image, without touching the disk: predictions, IG for
the chosen (and the predicted) label, gradients at the image, interior gradients, and the score
and inner-layer saturation along the path."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from igkit import IGInputError, IGResult, aggregate, gradients_at, integrated_gradients
from igkit import layer_saturation, score_curve
from igkit.layers import resolve_module
from igkit.methods import saliency

from .baselines import BaselineSpec
from .labels import Prediction, prediction_for, top_predictions
from .models import VisionModel

#: relative completeness error the plugin integrates to unless a fixed rule is asked for
DEFAULT_TOLERANCE = 0.01
DEFAULT_MAX_STEPS = 1024


def integration_options(steps: int | None = None, method: str = "gausslegendre",
                        tolerance: float | None = None, max_steps: int = DEFAULT_MAX_STEPS,
                        batch_size: int | None = None) -> dict[str, Any]:
    """Keyword arguments for :func:`igkit.integrated_gradients`.

    With neither ``steps`` nor ``tolerance`` the integral is refined adaptively until
    completeness holds within 1% (Inception's saturated softmax makes a fixed step
    count unreliable); giving ``steps`` selects the fixed ``method`` rule instead.
    """
    if steps is None and tolerance is None:
        tolerance = DEFAULT_TOLERANCE
    if tolerance is not None:
        return {"tolerance": tolerance, "max_steps": max_steps, "batch_size": batch_size}
    return {"steps": steps, "method": method, "batch_size": batch_size}


@dataclass(frozen=True)
class ExplainSettings:
    """What decides the numbers of an explanation (kept in ``summary.json`` for re-runs)."""

    score: str = "probability"
    baseline: BaselineSpec = field(default_factory=BaselineSpec)
    integration: dict[str, Any] = field(default_factory=integration_options)
    frames: int = 20
    curve_points: int = 21
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.frames < 2 or self.curve_points < 2:
            raise IGInputError(f"--frames and --curve-points need at least 2 values of alpha, got "
                               f"{self.frames} and {self.curve_points}")

    def describe(self) -> dict[str, Any]:
        return {"score": self.score, **self.baseline.describe(), "integration": self.integration,
                "frames": self.frames, "curve_points": self.curve_points,
                "layers": list(self.layers) if self.layers is not None else None}


@dataclass
class Explanation:
    """One image's numbers. Attributions are ``[3, H, W]``; importance maps ``[H, W]``."""

    pixels: torch.Tensor
    predictions: list[Prediction]
    target: Prediction
    ig: IGResult                      # example 0: the target; example 1 (if any): the prediction
    gradients: torch.Tensor
    interior_alphas: torch.Tensor
    interior_importance: torch.Tensor  # [frames, H, W]
    curve: dict[str, torch.Tensor]
    layers: dict[str, dict[str, torch.Tensor]]
    seconds: float

    @property
    def predicted(self) -> Prediction:
        return self.predictions[0]

    @property
    def misclassified(self) -> bool:
        """True when the chosen label is not the top prediction (Figure 6 then compares both)."""
        return self.target.index != self.predicted.index

    def attributions(self, example: int = 0) -> torch.Tensor:
        """IG attributions ``[3, H, W]`` for the target (0) or the prediction (1), on the CPU."""
        return self.ig.attributions[example].detach().cpu()

    def importance(self, example: int = 0) -> torch.Tensor:
        """Pixel importance Σ_c |IG attribution| (Eq. 1 of the paper)."""
        return pixel_importance(self.attributions(example))

    def gradient_importance(self) -> torch.Tensor:
        """Pixel importance Σ_c |gradient at the image| (Eq. 1)."""
        return pixel_importance(self.gradients)


def pixel_importance(attributions: torch.Tensor) -> torch.Tensor:
    """Σ over colour channels of |attribution|: ``[3, H, W]`` → ``[H, W]``."""
    return aggregate(attributions, dims=0, how="sum_abs")


def saturation_modules(model: VisionModel, settings: ExplainSettings) -> dict[str, torch.nn.Module]:
    """The modules of inner-layer saturation by name; an unknown name lists the model's modules."""
    names = settings.layers if settings.layers is not None else model.layers
    return {name: resolve_module(model.module, name) for name in names}


def explain_pixels(model: VisionModel, pixels: torch.Tensor, settings: ExplainSettings,
                   label: int | None = None) -> Explanation:
    """Attribute the image ``pixels`` (``[3, H, W]`` in [0, 1]) for ``label`` (default: the top class)."""
    pixels = pixels.to(model.device)
    x = pixels.unsqueeze(0)
    with torch.no_grad():
        logits = model.logits(x)[0]
    if not torch.isfinite(logits).all():
        raise IGInputError("the model returned non-finite scores for this image")
    predictions = top_predictions(logits, model.categories)
    target = prediction_for(logits, model.categories, predictions[0].index if label is None else label)
    forward = model.scorer(settings.score)
    targets = [target.index] + ([predictions[0].index] if target.index != predictions[0].index else [])
    start = time.perf_counter()
    ig = integrated_gradients(forward, x.expand(len(targets), -1, -1, -1),
                              settings.baseline.stack(pixels), target=targets, **settings.integration)
    seconds = time.perf_counter() - start
    batch = settings.integration.get("batch_size")
    gradients = saliency(forward, x, target=target.index, batch_size=batch)[0]
    path_start = settings.baseline.path_start(pixels)
    alphas = torch.arange(1, settings.frames + 1, dtype=torch.float64) / settings.frames
    interior = gradients_at(forward, x, alphas.tolist(), path_start, target=target.index,
                            batch_size=batch)[0][:, 0]
    curve = score_curve(model.logits, x, target=target.index, alphas=settings.curve_points,
                        baselines=path_start, batch_size=batch)
    modules = saturation_modules(model, settings)
    layers = layer_saturation(model.logits, x, modules, alphas=settings.curve_points,
                              baselines=path_start, batch_size=batch) if modules else {}
    return Explanation(
        pixels=pixels.cpu(), predictions=predictions, target=target, ig=ig,
        gradients=gradients.cpu(), interior_alphas=alphas,
        interior_importance=aggregate(interior, dims=1, how="sum_abs").cpu(),
        curve={k: v.cpu() for k, v in curve.items()},
        layers={n: {k: v.cpu() for k, v in d.items()} for n, d in layers.items()}, seconds=seconds)
