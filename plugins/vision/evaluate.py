"""``igkit vision evaluate``: is IG better than gradients at the image on *your* images?

Pixel ablation (Samek et al., the paper's protocol): black out the most important pixels
100 at a time over 50 steps and measure the score drop (AOPC, Figure 5; a random order is the
reference). Localisation: the share of pixel importance inside human-drawn boxes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit import (Duplicate, Explanation, IGInputError, IgkitError, Integration, Skipped,
                   ablation_curve, aopc, explain_stream, fraction_inside, run_options, write_csv,
                   write_json)
from igkit.run.progress import Progress, on_pass

from .attribution import ImageExplanation
from .boxes import BoxSource
from .domain import VisionDomain, vision_settings
from .figures import Line, Panel, line_panels, scatter
from .images import read_image
from .models import VisionModel

METHODS = ("integrated_gradients", "gradients", "random")
#: explain-only settings, left out of evaluation.json
PICTURE_SETTINGS = ("frames", "curve_points", "layers", "clip", "polarity", "underlay", "outline_top", "label")


@dataclass(frozen=True)
class AblationSettings:
    """How many pixels are blacked out in total, and how many per step."""

    pixels: int = 5000
    per_step: int = 100

    def __post_init__(self) -> None:
        if self.per_step < 1 or self.pixels < self.per_step or self.pixels % self.per_step:
            raise IGInputError(f"--ablate-pixels ({self.pixels}) must be a positive multiple of "
                               f"--ablate-per-step ({self.per_step})")

    @property
    def steps(self) -> int:
        return self.pixels // self.per_step


@dataclass
class ImageEvaluation:
    """One image: AOPC per method, score after each ablation step, and box localisation."""

    image: str
    label: str
    aopc: dict[str, float]
    curves: dict[str, list[float]]
    inside: dict[str, float] | None = None
    box_share: float | None = None
    boxes_problem: str | None = None

    def as_dict(self) -> dict:
        return {"image": self.image, "label": self.label, "aopc": self.aopc, "score_after_step": self.curves,
                "fraction_inside_boxes": self.inside, "box_share_of_image": self.box_share,
                "boxes_problem": self.boxes_problem}


@dataclass
class EvaluationReport:
    images: list[ImageEvaluation] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    def aopc_curves(self) -> dict[str, np.ndarray]:
        """Mean over images of AOPC up to step k (Figure 5), per method."""
        return {m: np.mean([cumulative_aopc(e.curves[m]) for e in self.images], axis=0) for m in METHODS}

    def localised(self) -> list[ImageEvaluation]:
        return [e for e in self.images if e.inside is not None]

    def summary(self) -> dict:
        out: dict = {"images": len(self.images), "failed": len(self.failed),
                     "mean_aopc": {m: float(np.mean([e.aopc[m] for e in self.images])) for m in METHODS}
                     if self.images else {}}
        boxed = self.localised()
        if boxed:
            ig = np.array([e.inside["integrated_gradients"] for e in boxed])
            grad = np.array([e.inside["gradients"] for e in boxed])
            out["localisation"] = {"images_with_boxes": len(boxed),
                                   "mean_fraction_inside": {"integrated_gradients": float(ig.mean()),
                                                            "gradients": float(grad.mean())},
                                   "ig_higher_on": int((ig > grad).sum()),
                                   "mean_difference_ig_minus_gradients": float((ig - grad).mean())}
        return out

    def headline(self) -> list[str]:
        s = self.summary()
        lines = [f"AOPC over {s['images']} image(s): " + ", ".join(f"{m} {v:.4f}" for m, v in
                                                                  s.get("mean_aopc", {}).items())]
        if "localisation" in s:
            loc = s["localisation"]
            lines.append(f"share inside boxes over {loc['images_with_boxes']} image(s): IG "
                         f"{loc['mean_fraction_inside']['integrated_gradients']:.3f}, gradients "
                         f"{loc['mean_fraction_inside']['gradients']:.3f}; IG higher on "
                         f"{loc['ig_higher_on']}")
        return lines


def cumulative_aopc(curve: Sequence[float]) -> np.ndarray:
    """AOPC after each step k: mean of f(x) − f(x with k·n pixels removed) over steps 0..k."""
    c = np.asarray(curve, dtype=np.float64)
    return np.cumsum(c[0] - c) / np.arange(1, len(c) + 1)


def blackout(x: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` (``[3, H, W]``) with the RGB of the flat pixel indices set to zero."""
    out = x.clone()
    out.view(x.shape[0], -1)[:, pixels] = 0
    return out


def evaluate_explanation(exp: ImageExplanation, source: str, ablation: AblationSettings, boxes: BoxSource
                         ) -> ImageEvaluation:
    """AOPC of IG, gradients and a random order for one explained image, and localisation when
    ``source`` (an image file) has boxes."""
    model = exp.model
    x = exp.pixels.to(model.device)
    if x[0].numel() < ablation.pixels:
        raise IGInputError(f"asked to ablate {ablation.pixels} pixels but the model sees "
                           f"{x.shape[1]}×{x.shape[2]} = {x[0].numel()}; lower --ablate-pixels")
    forward = model.scorer(exp.options.score)
    label = exp.target.index
    importance = {"integrated_gradients": exp.importance(0), "gradients": exp.gradient_importance()}
    generator = torch.Generator().manual_seed(0)
    orders = {m: torch.argsort(v.flatten().cpu(), descending=True, stable=True) for m, v in importance.items()}
    orders["random"] = torch.randperm(x[0].numel(), generator=generator)

    def score(batch: torch.Tensor) -> torch.Tensor:
        return forward(batch)[:, label]

    curves = {m: ablation_curve(score, x, order.to(x.device), blackout, per_step=ablation.per_step,
                                n_steps=ablation.steps, batch_size=16).cpu().tolist()
              for m, order in orders.items()}
    result = ImageEvaluation(source, exp.target.label, {m: aopc(torch.tensor(c)) for m, c in curves.items()},
                             curves)
    path = Path(source)
    if not path.is_file():  # an image given in Python has no boxes
        return result
    try:
        found = boxes.for_image(path)
    except IGInputError as exc:
        result.boxes_problem = str(exc)
        return result
    if found is not None:
        mask = model.preprocessing.mask(found.mask(read_image(path).size))
        result.box_share = float(mask.mean())
        result.inside = {m: fraction_inside(v.cpu().numpy(), mask) for m, v in importance.items()}
    return result


def evaluate_folder(model: VisionModel, paths: Sequence[Any], out_dir: str | Path,
                    settings: dict[str, Any] | None = None, ablation: AblationSettings | None = None, *,
                    boxes: str | Path | None = None, integration: Integration | None = None,
                    show_progress: bool = True) -> EvaluationReport:
    """Evaluate every image (files, folders; the top label of each); write ``evaluation.json``/``.csv``,
    ``aopc.png``/``.csv`` and, with boxes, ``localisation.png``/``.csv`` into ``out_dir``.

    ``settings`` are the vision settings (``score``, ``baseline``, ...; see ``igkit vision explain
    --help``); IG runs through igkit's runner with ``integration`` (default: the domain's).
    """
    domain = VisionDomain()
    settings = vision_settings(**{**(settings or {}), "label": None})
    ablation = ablation or AblationSettings()
    crop = model.preprocessing.crop_size
    if crop is not None:
        side = (crop, crop) if isinstance(crop, int) else crop
        if side[0] * side[1] < ablation.pixels:
            raise IGInputError(f"asked to ablate {ablation.pixels} pixels but the model sees "
                               f"{side[0]}×{side[1]} = {side[0] * side[1]}; lower --ablate-pixels")
    source = BoxSource(boxes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise IGInputError(f"--out {out} is a file; give a folder")
    options = run_options(domain, **(vars(integration) if integration else {}))
    report = EvaluationReport()
    bar = Progress([], desc="evaluate images", enabled=show_progress)
    items = domain.read_items(list(paths), **settings)
    with on_pass(lambda n: bar.refresh("IG and ablation")):
        for outcome in explain_stream(domain, model, items, settings, options,
                                      on_item=lambda item: bar.refresh(item.name[:30] if item else "")):
            if isinstance(outcome, Explanation):
                try:
                    report.images.append(evaluate_explanation(outcome, outcome.item.source,
                                                              ablation, source))
                except IgkitError as exc:
                    report.failed[outcome.item.source] = str(exc)
            elif isinstance(outcome, Skipped):
                report.failed[outcome.source] = outcome.reason
            elif isinstance(outcome, Duplicate):
                report.duplicates[outcome.item.source] = outcome.first.source
            bar.advance()
    bar.close()
    write_evaluation(report, out, model, settings, ablation)
    return report


def write_evaluation(report: EvaluationReport, out: Path, model: VisionModel, settings: dict[str, Any],
                     ablation: AblationSettings) -> None:
    made_by = model.provenance
    write_json(out / "evaluation.json", {**report.summary(), "per_image": [e.as_dict() for e in report.images],
                                         "failed_images": report.failed, "duplicates": report.duplicates,
                                         "settings": {k: v for k, v in settings.items()
                                                      if k not in PICTURE_SETTINGS},
                                         "ablation": {"pixels": ablation.pixels, "per_step": ablation.per_step,
                                                      "steps": ablation.steps, "ablated_value": "RGB = 0"},
                                         **model.describe()})
    write_csv(out / "evaluation.csv",
               ["image", "label", *(f"aopc_{m}" for m in METHODS), "inside_integrated_gradients",
                "inside_gradients", "box_share"],
               [(e.image, e.label, *(e.aopc[m] for m in METHODS),
                 *((e.inside["integrated_gradients"], e.inside["gradients"]) if e.inside else ("", "")),
                 "" if e.box_share is None else e.box_share) for e in report.images])
    if not report.images:
        return
    curves = report.aopc_curves()
    steps = np.arange(ablation.steps + 1)
    line_panels([Panel(f"AOPC over {len(report.images)} image(s)", f"perturbation step ({ablation.per_step} "
                       f"pixels each)", "AOPC", [Line(m, steps.tolist(), c.tolist()) for m, c in curves.items()])],
                out / "aopc.png", "pixel ablation: integrated gradients vs gradients", made_by)
    write_csv(out / "aopc.csv", ["step", "pixels_ablated", *METHODS],
               [(k, k * ablation.per_step, *(curves[m][k] for m in METHODS)) for k in steps])
    boxed = report.localised()
    if boxed:
        ig = [e.inside["integrated_gradients"] for e in boxed]
        grad = [e.inside["gradients"] for e in boxed]
        scatter(grad, ig, out / "localisation.png", title="share of importance inside the boxes",
                xlabel="gradients at the image", ylabel="integrated gradients", made_by=made_by)
        write_csv(out / "localisation.csv", ["image", "integrated_gradients", "gradients", "box_share"],
                   [(e.image, a, b, e.box_share) for e, a, b in zip(boxed, ig, grad)])
