"""igkit vision plugin: Integrated Gradients for image classifiers (Inception v1 by default).

Python API: ``load_model`` (or ``VisionModel`` around any ``nn.Module`` with its
``Preprocessing``), ``explain_pixels`` for numbers only, ``explain_images`` and
``evaluate_folder`` for the files and pictures the CLI writes.
"""
from .attribution import ExplainSettings, Explanation, explain_pixels, integration_options, pixel_importance
from .baselines import BaselineSpec
from .evaluate import AblationSettings, evaluate_folder
from .explain import explain_images
from .images import read_image
from .labels import resolve_label
from .models import VisionModel, load_model
from .preprocessing import Preprocessing
from .render import RenderSettings

__all__ = [
    "AblationSettings", "BaselineSpec", "ExplainSettings", "Explanation", "Preprocessing", "RenderSettings",
    "VisionModel", "evaluate_folder", "explain_images", "explain_pixels", "integration_options",
    "load_model", "pixel_importance", "read_image", "resolve_label",
]
