"""igkit vision plugin: Integrated Gradients for image classifiers (Inception v1 by default).

Python API: ``igkit.explain("vision", images, model=...)`` returns one
:class:`ImageExplanation` per image (``load_model`` for torchvision classifiers, or
``VisionModel`` around any ``nn.Module`` with its ``Preprocessing``);
``igkit.explain_to_folder`` writes what ``igkit vision explain`` writes; ``evaluate_folder``
runs ``igkit vision evaluate``. Names load on first use, so importing the plugin stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AblationSettings": "evaluate", "evaluate_folder": "evaluate",
    "BaselineSpec": "baselines", "ImageExplanation": "attribution", "VisionOptions": "attribution",
    "pixel_importance": "attribution", "read_image": "images", "resolve_label": "labels",
    "VisionModel": "models", "load_model": "models", "Preprocessing": "preprocessing",
    "RenderSettings": "render", "VisionDomain": "domain", "vision_settings": "domain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'igkit.plugins.vision' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
