"""The vision tab of ``igkit app``: what it shows of the files ``igkit vision explain`` writes.

Read by :func:`igkit.app.views.find_view`; imported only when the app runs. It reads the
item folder (``predictions.json``, ``ig_paper.png``, ``ig_overlay.png``, ...) and draws
the interior gradient at α, and every other method, in the paper's rendering. The default
model is the shipped *trained* digits classifier (it works offline); random weights are
offered only as "untrained: not a classifier"; ImageNet weights only when they are on this
machine (the app never downloads); a person may upload weights and a class-names file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit import IGInputError
from igkit.app.views import (AppView, CustomInput, ModelChoice, Panels, escape_markdown, pictures_in,
                             read_csv_table, read_json_file)

from .choices import DEFAULT_MODEL, DIGITS, RANDOM

#: the pictures shown first, with their captions (others follow under "All files")
FEATURED = (("ig_paper.png", "integrated gradients (the paper's rendering)"),
            ("ig_overlay.png", "integrated gradients over the picture: red raises, blue lowers the score; "
                              "outlined: the top 10 % of pixels"),
            ("gradients_paper.png", "gradients at the image (for comparison)"),
            ("ig_predicted_paper.png", "integrated gradients for the model's own label"),
            ("saturation.png", "score along the path (saturation)"))
#: pictures smaller than this (the 32×32 digits) are enlarged, pixels kept sharp
SHOWN_SIDE = 256

#: what the app changes from the CLI's defaults, to answer in seconds (the download is what
#: `igkit vision explain --frames 8 --curve-points 11 --layers ''` writes)
QUICK = {"frames": 8, "curve_points": 11, "layers": []}


def example_pictures() -> list[str]:
    """Test digits the shipped digits model never saw, then the photos shipped with the app
    (``igkit.app``'s ``examples/``, for ImageNet models)."""
    from igkit.app import examples_dir

    from .digits import models_dir

    return [str(p) for p in sorted(models_dir().glob("digit_test_*.png"))] + \
        [str(p) for p in sorted(examples_dir().glob("*.jpg"))]


def enlarged(picture: Any) -> np.ndarray:
    """A small picture (a file or an RGB array) scaled up with sharp pixels so the page can show it."""
    from PIL import Image

    image = Image.open(picture).convert("RGB") if isinstance(picture, (str, Path)) else \
        Image.fromarray(np.asarray(picture, dtype=np.uint8))
    factor = max(1, SHOWN_SIDE // max(image.size))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    return np.asarray(image)


def digits_choice() -> ModelChoice:
    """The shipped trained digits classifier, with its measured test accuracy."""
    from .digits import read_config

    accuracy = read_config().get("test_accuracy")
    return ModelChoice(f"digits · trained (scikit-learn digits, test accuracy {accuracy:.4f})", DIGITS,
                       f"**Trained** small CNN shipped with igkit: it classifies handwritten digits 0–9 "
                       f"(test accuracy {accuracy:.4f} on 540 held-out digits). It expects a light digit on a "
                       f"dark background, like the example digits; other pictures get a digit too, with no "
                       f"meaning.")


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
    model_settings = ("weights", "size", "device", "labels")  # not the class to explain
    methods_legend = ("Each method in the paper's rendering: the picture's pixels shown as bright as their "
                      "Σ|attribution| over colour channels (this picture's own scale), so it shows where the "
                      "evidence is, not whether it raises or lowers the score.")
    custom_inputs = (
        CustomInput("architecture", "text", "Architecture of your weights",
                    "digits, or a torchvision classifier name such as resnet18"),
        CustomInput("weights", "file", "Weights file (.safetensors, .pth, .pt: a state dict)"),
        CustomInput("labels", "file", "Class names (.txt, one per line, in output order; optional)"),
    )

    def __init__(self, domain: Any) -> None:
        super().__init__(domain)
        self.examples = example_pictures()
        self.intro = ("**Images**: integrated gradients of a classifier's score along the path from a black "
                      "picture to yours. The default model is igkit's small **trained** digits classifier; "
                      "upload a picture or pick an example digit. The download holds what `igkit vision "
                      "explain --frames 8 --curve-points 11 --layers ''` writes.")

    def models(self, sources: Sequence[str | None]) -> list[ModelChoice]:
        choices: list[ModelChoice] = [] if sources else [digits_choice()]
        missing: list[str] = []
        for arch in list(sources) or [DEFAULT_MODEL]:
            if arch == DIGITS:
                choices.append(digits_choice())
                continue
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
                           f"{', '.join(missing)} (the app never downloads): {', '.join(missing)} is offered "
                           f"only untrained, clearly marked. Upload weights under \"Your own model\".")
        return choices

    def custom_choice(self, values: dict[str, str]) -> ModelChoice:
        """Uploaded weights for a named architecture, with the class names of an uploaded file (else
        the outputs are named by index)."""
        from .domain import vision_settings

        arch, weights, labels = values.get("architecture"), values.get("weights"), values.get("labels")
        if not weights:
            raise IGInputError("your own model needs its weights file: upload it under \"Your own model\" "
                               "(a state dict as .safetensors, .pth or .pt)")
        if not arch:
            raise IGInputError("name the architecture your weights are for: digits, or a torchvision "
                               "classifier such as resnet18")
        settings: tuple[tuple[str, Any], ...] = (("weights", weights),)
        if labels:
            if "labels" not in vision_settings():
                raise IGInputError("this version of the vision domain takes no class-names file; leave it out")
            settings += (("labels", labels),)
        named = "class names from your file" if labels else "classes named by index (upload a class-names file)"
        return ModelChoice(f"your {arch} weights ({Path(weights).name})", arch,
                           f"Your own weights for {escape_markdown(arch)}, {named}. igkit cannot tell whether "
                           f"they are trained: judge the predictions before the maps.", settings=settings)

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
        panels.pictures = [(enlarged(folder / name), caption) for name, caption in FEATURED if name in names]
        table = read_csv_table(folder / "predictions.csv", "top-5 predictions")
        if table is not None:
            panels.tables.append(table)
        if untrained:
            panels.notes.append("⚠️ **Random weights: untrained, not a classifier.** The maps show what an "
                                "untrained network responds to, nothing about the picture's class.")
        else:
            panels.notes.append(f"Model: {escape_markdown(found.get('model', ''))}, weights "
                                f"{escape_markdown(found.get('weights', ''))}.")
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
        return enlarged(paper_rendering(image, pixel_importance(grads).numpy(), explanation.options.render))


def app_view(domain: Any) -> VisionView:
    return VisionView(domain)

