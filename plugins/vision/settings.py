"""The vision domain's explain settings, declared once: ``igkit vision explain`` options (and the
model and path options of ``igkit vision evaluate``), the keywords of ``igkit.explain("vision",
...)``, the app's baseline and score choices, ``run.json`` and the README's option table all come
from here (:mod:`igkit.settings`). Light on purpose: ``igkit --help`` reads it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from igkit.settings import add_options, setting

from .choices import BASELINES, POLARITIES, SCORES, UNDERLAYS

MODEL, PATH, PICTURES, METHODS = "model", "path", "pictures", "other methods (--methods)"
#: occlusion's units: SLIC superpixels or square patches
OCCLUSION_UNITS = ("superpixels", "patches")


def module_names(text: str) -> list[str]:
    """``--layers a,b``: the module names, in order ('' gives none)."""
    return [name.strip() for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class VisionSettings:
    """What ``igkit vision explain`` may be told besides its images."""

    weights: str | None = setting(
        None, group=MODEL,
        help="FILE (state dict: .pth/.pt/.safetensors), a weights name of the model (IMAGENET1K_V1), or "
             "'random' (untrained, seeded, marked as such in every output); none: the model's ImageNet "
             "weights (torch cache, else download)")
    labels: str | None = setting(
        None, group=MODEL, metavar="FILE",
        help="class names, one per line in the order of the model's outputs (none: the official weights' "
             "names; a --weights file's classes are named by index)")
    size: int | None = setting(None, type=int, group=MODEL,
                               help="crop size in pixels instead of the weights' own (e.g. 224); smaller is "
                                    "faster")
    device: str | None = setting(None, group=MODEL,
                                 help="torch device: cpu, cuda, cuda:N or mps (none: cuda if available, else cpu)")
    label: str | int | None = setting(None, type=(str, int), group=PATH,
                                      help="class NAME or INDEX to explain (none: the top prediction); where the "
                                           "model's top label differs, Figure 6 compares both")
    score: str = setting("probability", choices=SCORES, group=PATH, control="Score explained",
                         help="what IG explains: softmax probability (the paper) or the logit")
    baseline: str = setting("black", choices=BASELINES, group=PATH, control="Baseline (where the path starts)",
                            help="where the path starts")
    blur_sigma: float | None = setting(None, type=float, minimum=0.0, group=PATH,
                                       help="blur baseline width in pixels (none: image size / 28)")
    noise_draws: int = setting(4, minimum=1, group=PATH, help="noise baseline: draws averaged")
    frames: int = setting(20, minimum=2, group=PICTURES, help="interior-gradient frames (alphas) in the GIF")
    curve_points: int = setting(21, minimum=2, group=PICTURES, help="alphas on the saturation curves")
    layers: list[str] | None = setting(None, type=list, item=str, parse=module_names, group=PICTURES,
                                       help="comma-separated module names for inner-layer saturation, or '' "
                                            "for none (none: the paper's for googlenet, else the last four "
                                            "blocks)")
    clip: tuple[float, float] = setting((0.0, 99.5), type=tuple, item=float, count=2, minimum=0.0,
                                        maximum=100.0, group=PICTURES, metavar=("LOW", "HIGH"),
                                        help="percentiles of importance mapped to black and full brightness")
    polarity: str = setting("both", choices=POLARITIES, group=PICTURES,
                            help="overlays: positive (green), negative (red) or both")
    underlay: str = setting("grey", choices=UNDERLAYS, group=PICTURES, help="overlays: what lies under the colours")
    shared_scale: bool = setting(False, only_if_set=True, group=PICTURES,
                                 help="overlays of the whole run on one colour scale (redrawn when the run "
                                      "ends), so colours compare across images; without it each image has its "
                                      "own (overlay.json says which)")
    outline_top: float = setting(10.0, minimum=0.0, maximum=100.0, group=PICTURES,
                                 help="overlays: outline regions of the top PERCENT of pixels (0: none)")
    cam_layer: str | None = setting(None, group=METHODS,
                                    help="grad_cam: module name of the map (none: the model's last conv block, "
                                         "e.g. inception5b for googlenet, layer4 for resnet)")
    occlusion: str = setting("superpixels", choices=OCCLUSION_UNITS, group=METHODS,
                             help="occlusion: SLIC superpixels (needs scikit-image; else patches, with a "
                                  "warning) or square patches, set to the baseline")
    occlusion_patch: int | None = setting(None, type=int, minimum=1, group=METHODS,
                                          help="occlusion: patch side in pixels (superpixels: about that area); "
                                               "none: side / 14")
    reference: list[str] | None = setting(None, type=list, item=str, repeat=True, group=METHODS, metavar="PATH",
                                          help="expected_gradients, multi_baseline_ig: reference image files or "
                                               "folders (repeatable); none: the run's own images")
    reference_count: int = setting(16, minimum=1, group=METHODS,
                                   help="expected_gradients, multi_baseline_ig: at most this many reference "
                                        "images (the first by sorted path)")


#: the settings ``igkit vision evaluate`` takes as options (it explains each image's top label)
EVALUATE_OPTIONS = ("weights", "labels", "size", "device", "score", "baseline", "blur_sigma", "noise_draws")


def add_evaluate_options(parser: argparse.ArgumentParser) -> None:
    """The model and path options of ``igkit vision evaluate``, as the explain command has them."""
    add_options(parser, VisionSettings, "vision", names=EVALUATE_OPTIONS)
