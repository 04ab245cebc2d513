"""Attributing to a module's output (an embedding layer) instead of the raw input.

Token ids cannot be scaled, but their embeddings can: capture the embedding
module's output once, then run the model with that output replaced by the
scaled version. Works with any ``nn.Module`` the user names.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from igkit.errors import IGInputError


def resolve_module(model: nn.Module, module: nn.Module | str) -> nn.Module:
    """``module`` itself, or the submodule of ``model`` with that dotted name."""
    if isinstance(module, nn.Module):
        return module
    try:
        return model.get_submodule(module)
    except AttributeError as exc:
        names = [n for n, _ in model.named_modules() if n]
        raise IGInputError(f"model has no submodule {module!r}; submodules: {', '.join(names[:30])}") from exc


@torch.no_grad()
def module_output(model: nn.Module, module: nn.Module | str, *args: Any, **kwargs: Any) -> torch.Tensor:
    """What ``module`` outputs when ``model(*args, **kwargs)`` runs (e.g. the embeddings)."""
    target = resolve_module(model, module)
    captured: list[torch.Tensor] = []
    handle = target.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model(*args, **kwargs)
    finally:
        handle.remove()
    if not captured:
        raise IGInputError("the named module did not run during the model's forward pass")
    return captured[0].detach()


def forward_with_module_output(model: nn.Module, module: nn.Module | str,
                               score: Callable[[Any], torch.Tensor] | None = None
                               ) -> Callable[..., torch.Tensor]:
    """``f(replacement, *model_args)`` runs ``model(*model_args)`` with ``module``'s output
    swapped for ``replacement``; ``score`` maps the model's output to scores (default: as is)."""
    target = resolve_module(model, module)

    def forward(replacement: torch.Tensor, *model_args: Any) -> torch.Tensor:
        def swap(_m, _i, out):
            if out.shape != replacement.shape:
                raise IGInputError(f"replacement shape {tuple(replacement.shape)} does not match the "
                                   f"module's output shape {tuple(out.shape)}")
            return replacement

        handle = target.register_forward_hook(swap)
        try:
            out = model(*model_args)
        finally:
            handle.remove()
        return score(out) if score is not None else out

    return forward
