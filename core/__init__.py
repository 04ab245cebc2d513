"""igkit: Integrated Gradients for PyTorch, with a completeness check that picks the step count.

Names are imported on first use (PEP 562), so ``igkit --help`` and ``import igkit``
stay light; ``from igkit import integrated_gradients`` works as usual.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

#: the public API, by the module that defines it (documented in README.md, "Public API")
_PUBLIC = {
    "api": ("explain", "explain_to_folder", "Results", "run_options"),
    "attribution.aggregate": ("aggregate",),
    "attribution.baselines": ("as_input_tuple", "resolve_baselines"),
    "attribution.evaluation": ("ablation_curve", "aopc", "attribution_auc", "fraction_inside", "kendall_tau"),
    "attribution.integrated": ("integrated_gradients",),
    "attribution.layers": ("forward_with_module_output", "module_output"),
    "attribution.quadrature": ("RULES", "quadrature"),
    "attribution.result": ("IGResult",),
    "attribution.saturation": ("layer_saturation", "score_curve"),
    "domain": ("Domain", "Prepared", "Item", "BadItem", "Attribution", "Explanation", "text_item",
               "content_digest"),
    "errors": ("IgkitError", "IGInputError", "InputFileError", "ModelError", "OutputError",
               "NonFiniteError", "Interrupted", "IgkitWarning",),
    "hookspecs": ("hookimpl",),
    "io.checkpoint": ("save_checkpoint", "load_checkpoint", "load_state"),
    "io.records": ("read_text", "read_lines", "read_table", "write_csv", "write_json", "read_json"),
    "methods.backprop": ("guided_backprop", "grad_cam", "upsample_cam"),
    "methods.blur_ig": ("blur_ig", "gaussian_blur"),
    "methods.expected_gradients": ("expected_gradients", "multi_baseline_ig"),
    "methods.guided_ig": ("guided_ig",),
    "methods.occlusion": ("occlusion",),
    "methods.registry": ("METHODS", "attribute", "get_method", "gradients_at"),
    "methods.xrai": ("xrai", "XRAIResult"),
    "options": ("Integration",),
    "outputs.saturation_sheet": ("write_saturation", "Curve", "Panel"),
    "plugin_manager": ("domains", "get_domain", "list_plugins", "register", "unregister"),
    "run.progress": ("progress", "Progress"),
    "run.run_folder": ("RunReport", "run_to_folder"),
    "run.runner": ("RunOptions", "Skipped", "Duplicate", "explain_stream",
                   "attribute_group", "check_methods",),
}
_EXPORTS = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'igkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
