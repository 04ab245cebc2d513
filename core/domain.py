"""The domain interface: what a plugin supplies so igkit can explain its inputs.

The core knows nothing about images, molecules or words. A domain turns a user's
item (a file name, a SMILES string, a sentence) into tensors plus a forward
function, and turns an :class:`~igkit.result.IGResult` back into something a
person can look at. :func:`igkit.explain.explain_items` does the rest.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .result import IGResult


@dataclass
class Prepared:
    """One item made ready for attribution.

    ``inputs`` carry a leading batch dimension of 1 (or B for a batch the domain
    packs itself); ``forward(*scaled_inputs, *forward_args)`` returns scores.
    ``label`` names the target for humans (a class name, a word); ``context``
    holds whatever :meth:`Domain.render` needs later (the image, the molecule).
    """

    name: str
    inputs: torch.Tensor | tuple[torch.Tensor, ...]
    forward: Callable[..., torch.Tensor]
    target: Any = None
    baselines: Any = None
    forward_args: tuple = ()
    label: str = ""
    context: dict[str, Any] = field(default_factory=dict)


class Domain(ABC):
    """Base class for a kind of input. Subclass it and return it from ``igkit_domains``."""

    #: short name used on the command line (``igkit explain --domain NAME``)
    name: str = ""
    #: one line for ``igkit plugins``
    description: str = ""

    @abstractmethod
    def load_model(self, source: str | None) -> Any:
        """Load the model named by ``source`` (a file, a model name, or None for the default)."""

    @abstractmethod
    def prepare(self, model: Any, item: str) -> Prepared:
        """Turn one user item into a :class:`Prepared`; raise ``IGInputError`` if it is unusable."""

    def importance(self, result: IGResult, prepared: Prepared) -> dict[str, np.ndarray]:
        """Per-feature importance to write as CSV; by default each input's attribution, flattened."""
        return {f"input{i}": a[0].detach().cpu().numpy().ravel()
                for i, a in enumerate(result.attribution_tuple)}

    def render(self, result: IGResult, prepared: Prepared, out_dir: Path) -> list[Path]:
        """Write pictures for one item into ``out_dir``; return the files written."""
        return []
