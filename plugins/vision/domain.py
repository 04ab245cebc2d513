"""The ``vision`` domain for the generic ``igkit explain --domain vision``: image files in, IG of
the top class's softmax probability along the black-to-image path out (the dedicated
``igkit vision explain`` writes the full set of pictures)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from igkit import Domain, IGResult, Prepared

from .attribution import pixel_importance
from .images import read_image
from .models import DEFAULT_MODEL, VisionModel, load_model
from .records import save_picture
from .render import RenderSettings, as_image, overlay, paper_rendering


class VisionDomain(Domain):
    name = "vision"
    description = "images with torchvision ImageNet classifiers (default googlenet, Inception v1)"

    def load_model(self, source: str | None) -> VisionModel:
        """``source``: a torchvision model name (default googlenet) with its ImageNet weights."""
        return load_model(source or DEFAULT_MODEL)

    def prepare(self, model: VisionModel, item: str) -> Prepared:
        pixels = model.preprocessing.pixels(read_image(item)).unsqueeze(0).to(model.device)
        forward = model.scorer("probability")
        with torch.no_grad():
            top = int(model.logits(pixels).argmax(1)[0])
        return Prepared(name=Path(item).stem, inputs=pixels, forward=forward, target=top,
                        label=model.categories[top], context={"model": model})

    def importance(self, result: IGResult, prepared: Prepared) -> dict[str, np.ndarray]:
        """Pixel importance Σ_c |attribution| (Eq. 1), row by row."""
        return {"pixels": pixel_importance(result.attributions[0]).cpu().numpy().ravel()}

    def render(self, result: IGResult, prepared: Prepared, out_dir: Path) -> list[Path]:
        model = prepared.context["model"]
        image = as_image(prepared.inputs[0])
        settings = RenderSettings()
        importance = pixel_importance(result.attributions[0]).cpu().numpy()
        return [save_picture(paper_rendering(image, importance, settings), out_dir / "ig_paper.png", model),
                save_picture(overlay(image, result.attributions[0], settings), out_dir / "ig_overlay.png", model)]
