"""The vision tab of ``igkit app``: what it shows of the files ``igkit vision explain`` writes.

Read by :func:`igkit.app.views.find_view`; imported only when the app runs. It reads the
item folder (``predictions.json``, ``ig_paper.png``, ``ig_overlay.png``, ...) and draws
the interior gradient at α in the paper's rendering. Random weights are offered only
as "untrained: not a classifier"; ImageNet weights only when they are on this machine
(the app never downloads).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit.app.views import AppView, ModelChoice, Panels, pictures_in, read_csv_table, read_json_file

from .domain import DEFAULT_MODEL, RANDOM

#: the pictures shown first, with their captions (others follow under "All files")
FEATURED = (("ig_paper.png", "integrated gradients (the paper's rendering)"),
            ("ig_overlay.png", "integrated gradients: overlay (green +, red −)"),
            ("gradients_paper.png", "gradients at the image (for comparison)"),
            ("ig_predicted_paper.png", "integrated gradients for the model's own label"),
            ("saturation.png", "score along the path (saturation)"),
            ("methods.png", "the methods side by side"))

#: what the app changes from the CLI's defaults, to answer in seconds (the download is what
#: `igkit vision explain --frames 8 --curve-points 11 --layers ''` writes)
QUICK = {"frames": 8, "curve_points": 11, "layers": []}


def example_pictures() -> list[str]:
    """The example pictures shipped with the app (``igkit.app``'s ``examples/``)."""
    from igkit.app import examples_dir

    return [str(p) for p in sorted(examples_dir().glob("*.jpg"))]


def imagenet_weights_file(arch: str) -> Path | None:
    """Where the architecture's default ImageNet weights would be cached, or None if it has none."""
    from torchvision.models import get_model_weights

    from .models import cache_file

    try:
        return cache_file(get_model_weights(arch).DEFAULT.url)
    except (ValueError, KeyError, AttributeError):
        return None


class VisionView(AppView):
    input_kind = "image"
    input_label = "Picture (upload; at most 10 MB and 4096×4096 pixels)"
    target_label = "Class to explain"
    title = "images"
    model_settings = ("weights", "size", "device")  # not the class to explain
    method_pictures = False  # the domain draws them (methods.png)

    def __init__(self, domain: Any) -> None:
        super().__init__(domain)
        self.examples = example_pictures()
        self.intro = ("**Images**: integrated gradients of a torchvision classifier's softmax probability "
                      "along the black-to-image path. Upload a picture or pick an example. The download "
                      "holds what `igkit vision explain --frames 8 --curve-points 11 --layers ''` writes.")

    def models(self, sources: Sequence[str | None]) -> list[ModelChoice]:
        choices: list[ModelChoice] = []
        missing: list[str] = []
        for arch in list(sources) or [DEFAULT_MODEL]:
            cached = imagenet_weights_file(arch)
            if cached is not None and cached.is_file():
                choices.append(ModelChoice(f"{arch} · ImageNet weights", arch,
                                           f"{arch} with its ImageNet weights ({cached.name})."))
            else:
                missing.append(arch)
            choices.append(ModelChoice(
                f"{arch} · random weights (untrained: not a classifier)", arch,
                f"**Untrained: not a classifier.** {arch} with random weights: its 'predictions' and "
                f"maps say nothing about the picture's content; use it to try the app only."
                + (f" ImageNet weights for {arch} are not available on this machine (not in the torch "
                   f"cache {cached}; the app does not download)." if arch in missing and cached else ""),
                settings=(("weights", RANDOM),)))
        if missing:
            self.intro += (f"\n\n⚠️ ImageNet weights are **not available on this machine** for "
                           f"{', '.join(missing)} (the app never downloads): only untrained models are "
                           f"offered, clearly marked.")
        return choices

    def settings(self, target: str | None) -> dict[str, Any]:
        """The app's quick settings (the α slider replaces the long GIF; no inner-layer curves),
        and the chosen class."""
        return {**QUICK, **({"label": target} if target else {})}

    def panels(self, explanation: Any, folder: Path, summary: dict[str, Any]) -> Panels:
        panels = Panels()
        found = read_json_file(folder / "predictions.json") or {}
        top = found.get("top5") or []
        untrained = bool(found.get("random_weights"))
        if top:
            panels.label = {str(p["label"]): float(p["probability"]) for p in top}
            panels.label_title = ("top-5 outputs of an UNTRAINED model (not a classification)" if untrained
                                  else "top-5 predictions")
            panels.targets = [str(p["label"]) for p in top]
        names = {p.name for p in pictures_in(folder)}
        panels.pictures = [(str(folder / name), caption) for name, caption in FEATURED if name in names]
        table = read_csv_table(folder / "predictions.csv", "top-5 predictions")
        if table is not None:
            panels.tables.append(table)
        if untrained:
            panels.notes.append("⚠️ **Random weights: untrained, not a classifier.** The maps show what an "
                                "untrained network responds to, nothing about the picture's class.")
        return panels

    def map_picture(self, explanation: Any, values: tuple[torch.Tensor, ...], title: str, *,
                    gradient: bool = False) -> np.ndarray:
        """In the paper's rendering: the picture scaled by Σ_c |value| (the gradient at α, as the
        paper's interior gradients, or a method's attributions)."""
        from .attribution import pixel_importance
        from .render import as_image, paper_rendering

        grads = values[0].detach().cpu()
        grads = grads[0] if grads.dim() == 4 else grads
        image = as_image(explanation.pixels)
        return paper_rendering(image, pixel_importance(grads).numpy(), explanation.options.render)


def app_view(domain: Any) -> VisionView:
    return VisionView(domain)

