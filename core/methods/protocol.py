"""What an attribution method is, for the registry and for plugins that add one (the
``igkit_methods`` hook): kept apart from the registry so the hook's contract imports no registry."""
from __future__ import annotations

from typing import Any, Callable, Protocol

import torch

from igkit.attribution.baselines import Baselines
from igkit.attribution.targets import Target

Attributions = torch.Tensor | tuple[torch.Tensor, ...]


class AttributionMethod(Protocol):
    """``method(forward, inputs, baselines=None, *, target=None, **options) -> attributions``."""

    def __call__(self, forward: Callable[..., torch.Tensor], inputs: Attributions,
                 baselines: Baselines = None, *, target: Target = None, **options: Any
                 ) -> Attributions: ...
