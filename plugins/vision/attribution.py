"""One image made ready for igkit's runner, and what the paper computes for it beyond IG:
predictions, gradients at the image, interior gradients, the score and inner-layer saturation
along the path, and IG for the model's own label when ``--label`` names another (Figure 6).

Integrated gradients for the chosen label come from the runner (the same call for the CLI and
the Python API); the rest is computed on first use by :class:`ImageExplanation`, on the model
and with the integration rule of that result.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from igkit import Attribution, Explanation, IGInputError, IGResult, NonFiniteError, Prepared, aggregate
from igkit import gradients_at, integrated_gradients, layer_saturation, score_curve
from igkit.attribution.layers import resolve_module
from igkit.methods.registry import saliency
from igkit.options import DEFAULT_MAX_STEPS

from .baselines import BaselineSpec
from .choices import SCORES
from .images import image_pixels
from .labels import Prediction, prediction_for, resolve_label, top_predictions
from .render import RenderSettings

if TYPE_CHECKING:
    from .models import VisionModel


@dataclass(frozen=True)
class VisionOptions:
    """The vision settings as checked values (built from the settings dict of a run)."""

    score: str = "probability"
    baseline: BaselineSpec = BaselineSpec()
    label: str | None = None
    frames: int = 20
    curve_points: int = 21
    layers: tuple[str, ...] | None = None
    render: RenderSettings = RenderSettings()

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise IGInputError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
        if self.frames < 2 or self.curve_points < 2:
            raise IGInputError(f"--frames and --curve-points need at least 2 values of alpha, got "
                               f"{self.frames} and {self.curve_points}")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "VisionOptions":
        get = settings.get
        clip = get("clip") or (0.0, 99.5)
        layers = get("layers")
        if isinstance(layers, str):
            layers = [n.strip() for n in layers.split(",") if n.strip()]
        return cls(score=get("score") or "probability",
                   baseline=BaselineSpec(get("baseline") or "black", blur_sigma=get("blur_sigma"),
                                         noise_draws=4 if get("noise_draws") is None else int(get("noise_draws"))),
                   label=None if get("label") is None else str(get("label")),
                   frames=20 if get("frames") is None else int(get("frames")),
                   curve_points=21 if get("curve_points") is None else int(get("curve_points")),
                   layers=None if layers is None else tuple(layers),
                   render=RenderSettings(float(clip[0]), float(clip[1]), get("polarity") or "both",
                                         get("underlay") or "grey",
                                         10.0 if get("outline_top") is None else float(get("outline_top"))))

    def check(self, model: "VisionModel") -> None:
        """Refuse a label or layer name the model does not have (once, before any image)."""
        if self.label is not None:
            resolve_label(self.label, model.categories)
        saturation_modules(model, self)

    def describe(self) -> dict[str, Any]:
        return {"score": self.score, **self.baseline.describe(), "frames": self.frames,
                "curve_points": self.curve_points, "layers": None if self.layers is None else list(self.layers)}


def pixel_importance(attributions: torch.Tensor) -> torch.Tensor:
    """Σ over colour channels of |attribution|: ``[3, H, W]`` → ``[H, W]``."""
    return aggregate(attributions, dims=0, how="sum_abs")


def saturation_modules(model: "VisionModel", options: VisionOptions) -> dict[str, torch.nn.Module]:
    """The modules of inner-layer saturation by name; an unknown name lists the model's modules."""
    names = options.layers if options.layers is not None else model.layers
    return {name: resolve_module(model.module, name) for name in names}


def prepare_image(model: "VisionModel", value: Any, options: VisionOptions) -> Prepared:
    """One image for the runner: the label's score as the forward, the baseline stack, the context."""
    pixels = image_pixels(model, value)
    x = pixels.to(model.device).unsqueeze(0)
    with torch.no_grad():
        logits = model.logits(x)[0]
    if not torch.isfinite(logits).all():
        raise NonFiniteError("the model returned NaN or infinite scores for this image")
    predictions = top_predictions(logits, model.categories)
    index = predictions[0].index if options.label is None else resolve_label(options.label, model.categories)
    target = prediction_for(logits, model.categories, index)
    baselines = options.baseline.stack(x[0])
    name = Path(value).stem if isinstance(value, (str, Path)) else "image"
    return Prepared(name=name, inputs=x, forward=model.scorer(options.score), target=target.index,
                    baselines=baselines, label=target.label,
                    context={"model": model, "options": options, "pixels": pixels.cpu(),
                             "predictions": predictions, "target": target},
                    group=("image", id(model), options.score, tuple(x.shape[1:]), baselines.shape[0]))


def same_rule(result: IGResult) -> dict[str, Any]:
    """Integration keywords that repeat the rule of ``result``: its fixed steps and method, or its
    adaptive tolerance and floor."""
    if result.meta.get("tolerance") is not None:
        return {"tolerance": result.meta["tolerance"], "floor": result.meta.get("floor") or 0.0,
                "max_steps": result.meta.get("max_steps") or DEFAULT_MAX_STEPS}
    return {"steps": int(len(result.alphas[0])), "method": result.method}


@dataclass(eq=False)
class ImageExplanation(Explanation):
    """One image's explanation: the runner's :class:`igkit.Attribution` (IG for ``target``) plus
    the paper's other views, computed on first use. Attributions are ``[3, H, W]``, importance
    maps ``[H, W]``, all on the CPU."""

    attribution: Attribution
    model: "VisionModel"
    options: VisionOptions
    pixels: torch.Tensor
    predictions: list[Prediction]
    target: Prediction

    @classmethod
    def from_attribution(cls, attribution: Attribution) -> "ImageExplanation":
        c = attribution.prepared.context
        return cls(attribution, c["model"], c["options"], c["pixels"], c["predictions"], c["target"])

    @property
    def ig(self) -> IGResult:
        """IG for ``target`` (batch size 1): completeness, steps, path scores."""
        return self.attribution.result

    @property
    def predicted(self) -> Prediction:
        return self.predictions[0]

    @property
    def misclassified(self) -> bool:
        """True when the chosen label is not the top prediction (Figure 6 then compares both)."""
        return self.target.index != self.predicted.index

    @cached_property
    def ig_predicted(self) -> IGResult | None:
        """IG for the model's own label when ``target`` is another one (same rule), else None."""
        if not self.misclassified:
            return None
        x = self._x()
        return integrated_gradients(self._forward(), x, self.options.baseline.stack(x[0]),
                                    target=self.predicted.index, **same_rule(self.ig))

    def attributions(self, example: int = 0) -> torch.Tensor:
        """IG attributions ``[3, H, W]`` for the target (0) or the model's own label (1)."""
        result = self.ig if example == 0 else self.ig_predicted
        if result is None:
            raise IGInputError("there is no IG for the model's own label: it is the target itself")
        return result.attributions[0].detach().cpu()

    def importance(self, example: int = 0) -> torch.Tensor:
        """Pixel importance Σ_c |IG attribution| (Eq. 1 of the paper)."""
        return pixel_importance(self.attributions(example))

    # --- other methods (--methods) ---------------------------------------------------------
    @property
    def options_settings(self) -> dict[str, Any]:
        """The run's vision settings (what ``--methods`` were given: cam layer, occlusion, references)."""
        return self.attribution.prepared.context.get("settings", {})

    @property
    def method_names(self) -> list[str]:
        """The other methods computed for this image (``--methods``), in the order given."""
        return list(self.attribution.methods)

    def method_attributions(self, name: str) -> torch.Tensor:
        """A method's map for this image: ``[3, H, W]``, or ``[1, H, W]`` for grad_cam and xrai;
        ``integrated_gradients`` is IG's own."""
        if name == "integrated_gradients":
            return self.attributions(0)
        if name not in self.attribution.methods:
            raise IGInputError(f"{name} was not computed for this image; computed: "
                               f"{', '.join(self.method_names) or 'none besides integrated_gradients'}")
        return self.attribution.methods[name][0][0].detach().cpu()

    def method_importance(self, name: str) -> torch.Tensor:
        """A method's pixel map ``[H, W]``: Σ_c |attribution| (as for IG), or grad_cam's map (≥ 0)
        and xrai's region scores as they are (see :func:`.methods.pixel_map`)."""
        from .methods import pixel_map

        return pixel_map(name, self.method_attributions(name)).float()

    # --- beyond IG -------------------------------------------------------------------------
    @cached_property
    def gradients(self) -> torch.Tensor:
        """The gradient of the target's score at the image ``[3, H, W]``."""
        return saliency(self._forward(), self._x(), target=self.target.index)[0].detach().cpu()

    def gradient_importance(self) -> torch.Tensor:
        """Pixel importance Σ_c |gradient at the image| (Eq. 1)."""
        return pixel_importance(self.gradients)

    @property
    def path_start(self) -> torch.Tensor:
        """The single baseline that path pictures start from (the first noise draw for noise)."""
        return self.options.baseline.path_start(self._x()[0])

    @cached_property
    def interior_alphas(self) -> torch.Tensor:
        return torch.arange(1, self.options.frames + 1, dtype=torch.float64) / self.options.frames

    @cached_property
    def interior_importance(self) -> torch.Tensor:
        """Σ_c |∇F(baseline + α(image − baseline))| per frame: ``[frames, H, W]`` (Figure 3)."""
        grads = gradients_at(self._forward(), self._x(), self.interior_alphas.tolist(), self.path_start,
                             target=self.target.index)[0][:, 0]
        return aggregate(grads, dims=1, how="sum_abs").detach().cpu()

    @cached_property
    def curve(self) -> dict[str, torch.Tensor]:
        """Logit and probability of the target along the path (Figure 2)."""
        curve = score_curve(self.model.logits, self._x(), target=self.target.index,
                            alphas=self.options.curve_points, baselines=self.path_start)
        return {k: v.cpu() for k, v in curve.items()}

    @cached_property
    def layers(self) -> dict[str, dict[str, torch.Tensor]]:
        """L2 and cosine distance of inner activations to those at the image (Figure 12)."""
        modules = saturation_modules(self.model, self.options)
        if not modules:
            return {}
        found = layer_saturation(self.model.logits, self._x(), modules, alphas=self.options.curve_points,
                                 baselines=self.path_start)
        return {n: {k: v.cpu() for k, v in d.items()} for n, d in found.items()}

    def summary_fields(self) -> dict[str, Any]:
        """What the item's ``summary.json`` adds to igkit's common fields."""
        extra = self.ig_predicted
        return {"target_index": self.target.index, "label": self.target.as_dict(),
                "predicted": self.predicted.as_dict(), "misclassified": self.misclassified,
                **self.options.describe(), "gradient_evaluations": self.ig.meta.get("gradient_evaluations"),
                "ig_predicted": None if extra is None else extra.summary(0), **self.model.describe()}

    def _x(self) -> torch.Tensor:
        return self.pixels.to(self.model.device).unsqueeze(0)

    def _forward(self):
        return self.model.scorer(self.options.score)
