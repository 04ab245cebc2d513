"""Checks on the model behind a forward function, so a wrong result never comes without a word.

A model left in training mode (dropout, batch norm) gives attributions that change
from run to run and break completeness; a forward that detaches its input gives zero
gradients. Neither raises an error in torch, so igkit looks and warns.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Iterator

import torch

from .errors import IgkitWarning

#: relative completeness error above which a fixed-step result is flagged
LARGE_COMPLETENESS_ERROR = 0.05
_SEARCH_DEPTH = 4


def modules_behind(forward: Callable[..., Any]) -> list[torch.nn.Module]:
    """The ``nn.Module`` objects a forward function reaches: itself, its ``self``, partial
    arguments and closure variables (a few levels deep). Best effort: what is found is checked."""
    found: dict[int, torch.nn.Module] = {}
    for obj in _reachable(forward, _SEARCH_DEPTH, set()):
        if isinstance(obj, torch.nn.Module):
            found.setdefault(id(obj), obj)
    return list(found.values())


def _reachable(obj: Any, depth: int, seen: set[int]) -> Iterator[Any]:
    if depth < 0 or id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, torch.nn.Module):
        return
    children: list[Any] = []
    if isinstance(obj, functools.partial):
        children += [obj.func, *obj.args, *obj.keywords.values()]
    bound_self = getattr(obj, "__self__", None)
    if bound_self is not None:
        children.append(bound_self)
    closure = getattr(obj, "__closure__", None) or ()
    for cell in closure:
        try:
            children.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None:
        children.append(wrapped)
    for child in children:
        if isinstance(child, (torch.nn.Module, functools.partial)) or callable(child):
            yield from _reachable(child, depth - 1, seen)


def warn_if_training(forward: Callable[..., Any]) -> None:
    """Warn when a module behind ``forward`` is in training mode and has layers that care."""
    for module in modules_behind(forward):
        training = [name or type(module).__name__ for name, m in module.named_modules()
                    if m.training and _mode_matters(m)]
        if training:
            shown = ", ".join(training[:4]) + (" ..." if len(training) > 4 else "")
            warnings.warn(
                f"the model is in training mode ({shown}): dropout and batch norm make attributions "
                f"change from run to run and break completeness; call model.eval() before attributing",
                IgkitWarning, stacklevel=3)
            return


def _mode_matters(module: torch.nn.Module) -> bool:
    return isinstance(module, (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm,
                               torch.nn.RNNBase)) and (not isinstance(module, torch.nn.RNNBase)
                                                      or module.dropout > 0)


def warn_if_incomplete(errors: torch.Tensor, steps: int) -> None:
    """After a fixed-step run: flag examples whose completeness error is large, with likely causes."""
    bad = (errors > LARGE_COMPLETENESS_ERROR).nonzero().flatten().tolist()
    if bad:
        warnings.warn(
            f"completeness error above {LARGE_COMPLETENESS_ERROR:.0%} for example(s) {bad[:10]} "
            f"(worst {float(errors.max()):.3g}) with {steps} fixed steps: the attributions do not add "
            f"up to F(x) − F(baseline). Likely causes: too few steps (use adaptive integration), a "
            f"model in training mode, a forward that detaches or re-creates its input, or "
            f"non-differentiable steps (argmax, rounding, thresholds)", IgkitWarning, stacklevel=3)
