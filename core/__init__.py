"""igkit: Integrated Gradients for PyTorch, with a completeness check that picks the step count.

Names are imported on first use (PEP 562), so ``igkit --help`` and ``import igkit``
stay light; ``from igkit import integrated_gradients`` works as usual.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.2.0"

#: the public API: name -> submodule that defines it (documented in README.md, "Public API")
_EXPORTS = {
    "integrated_gradients": "integrated", "IGResult": "result", "Integration": "options",
    "explain": "api", "explain_to_folder": "api", "Explanations": "api", "run_options": "api",
    "Domain": "domain", "Prepared": "domain", "Item": "domain", "BadItem": "domain",
    "Attribution": "domain", "text_item": "domain", "content_digest": "domain",
    "RunOptions": "runner", "Explained": "runner", "Skipped": "runner", "Duplicate": "runner",
    "explain_stream": "runner", "attribute_group": "runner", "check_methods": "runner",
    "RunReport": "run_folder", "run_to_folder": "run_folder",
    "IgkitError": "errors", "IGInputError": "errors", "InputFileError": "errors", "ModelError": "errors",
    "OutputError": "errors", "NonFiniteError": "errors", "Interrupted": "errors",
    "IgkitWarning": "errors",
    "METHODS": "methods", "attribute": "methods", "get_method": "methods", "gradients_at": "methods",
    "occlusion": "occlusion", "guided_backprop": "backprop", "grad_cam": "backprop",
    "upsample_cam": "backprop", "expected_gradients": "expected_gradients",
    "multi_baseline_ig": "expected_gradients", "blur_ig": "blur_ig", "gaussian_blur": "blur_ig",
    "guided_ig": "guided_ig", "xrai": "xrai", "XRAIResult": "xrai",
    "aggregate": "aggregate", "as_input_tuple": "baselines", "resolve_baselines": "baselines",
    "ablation_curve": "evaluation", "aopc": "evaluation", "attribution_auc": "evaluation",
    "fraction_inside": "evaluation", "kendall_tau": "evaluation",
    "hookimpl": "hookspecs", "forward_with_module_output": "layers", "module_output": "layers",
    "domains": "plugin_manager", "get_domain": "plugin_manager", "list_plugins": "plugin_manager",
    "register": "plugin_manager", "unregister": "plugin_manager",
    "progress": "progress", "Progress": "progress", "RULES": "quadrature", "quadrature": "quadrature",
    "layer_saturation": "saturation", "score_curve": "saturation",
    "write_saturation": "saturation_sheet", "Curve": "saturation_sheet", "Panel": "saturation_sheet",
    "read_text": "records", "read_lines": "records", "read_table": "records", "write_csv": "records",
    "write_json": "records", "read_json": "records",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "load_state": "checkpoint",
}

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


class _Package(types.ModuleType):
    """Some public functions share their submodule's name (``expected_gradients``, ``blur_ig``,
    ``guided_ig``, ``xrai``, ``aggregate``): importing the submodule binds the module to that
    name in the package, so ``igkit.expected_gradients(...)`` would call a module. The function
    wins."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return getattr(value, name)
        return value

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickled by name, as a plain module is: Ray and multiprocessing ship functions that
        refer to the package."""
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _Package
