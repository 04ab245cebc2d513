"""igkit molecules plugin: weave networks on molecules, atom and pair attributions, ground-truth tasks.

The Python API (``explain_molecules``, ``featurize_smiles``, ``load_model``, …) is
imported lazily so that loading the plugin for the CLI stays cheap. Explaining is
``igkit.explain("molecules", [...])``; ``explain_molecules`` is that, with a model.
"""
from __future__ import annotations

from importlib import import_module

_API = {
    "featurize_smiles": ".api", "explain_molecules": ".api", "featurize_records": ".api",
    "read_molecules": ".readers", "MoleculesDomain": ".domain",
    "load_model": ".checkpoint", "save_model": ".checkpoint", "predict": ".checkpoint",
    "MoleculeModel": ".checkpoint", "Featurization": ".featurize", "featurize": ".featurize",
    "MoleculeExplanation": ".explanation", "explain_graphs": ".api",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
