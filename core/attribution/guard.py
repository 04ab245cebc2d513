"""Checks on the model and the inputs, so a wrong result never comes without a word.

A model left in training mode (dropout, batch norm) gives attributions that change
from run to run and break completeness; a forward that detaches its input gives zero
gradients. Neither raises an error in torch, so igkit looks and warns. Inputs that
cannot work (no examples, NaN, no data, another dtype or device than the model's)
are refused before any pass, with what to do, instead of a torch traceback or a
NaN blamed on the model.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Iterator

import torch

from igkit.errors import IGInputError, IgkitWarning

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


def warn_if_training(modules: list[torch.nn.Module]) -> None:
    """Warn when one of the ``modules`` behind a forward (:func:`modules_behind`) is in training mode
    and has layers that care."""
    for module in modules:
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


def check_examples(xs: tuple[torch.Tensor, ...]) -> None:
    """Refuse inputs no attribution can come from: no examples, no data, NaN or infinite values."""
    if xs[0].shape[0] == 0:
        raise IGInputError("the batch holds no examples (its first dimension is 0); give at least one")
    for i, x in enumerate(xs):
        if x.device.type == "meta":
            raise IGInputError(f"input {i} is on the 'meta' device, which holds shapes but no values; give "
                               f"a tensor with data (e.g. on 'cpu')")
        _check_finite(x, f"input {i}", "replace them (torch.nan_to_num) or leave the example out")


def check_baselines(bs: tuple[torch.Tensor, ...]) -> None:
    """Refuse an empty stack of baselines, or baselines holding NaN or infinite values."""
    if bs[0].shape[0] == 0:
        raise IGInputError("the stack of baselines is empty (K = 0); give at least one baseline, or None "
                           "for zeros")
    for i, b in enumerate(bs):
        _check_finite(b, f"the baseline of input {i}", "give finite baselines")


def _check_finite(t: torch.Tensor, what: str, fix: str) -> None:
    if t.numel() == 0 or not t.dtype.is_floating_point:
        return
    lowest, highest = torch.aminmax(t)   # one reduction: NaN and ±inf show here, and it is cheap
    if bool(torch.isfinite(lowest) & torch.isfinite(highest)):
        return
    bad = ~torch.isfinite(t.reshape(t.shape[0], -1))
    if bool(bad.any()):
        rows = bad.any(1).nonzero().flatten().tolist()
        raise IGInputError(f"{what} holds {int(bad.sum())} NaN or infinite value(s), in example(s) "
                           f"{rows[:10]}: attributions need finite inputs; {fix}")


def check_model_matches(modules: list[torch.nn.Module], xs: tuple[torch.Tensor, ...]) -> None:
    """Refuse inputs whose dtype or device differs from the parameters of the ``modules`` behind a
    forward (torch would fail deep inside the model, or silently promote)."""
    params = [p for m in modules for p in m.parameters() if p.is_floating_point()]
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    for i, x in enumerate(xs):
        if len(dtypes) == 1 and x.dtype not in dtypes:
            (dtype,) = dtypes
            raise IGInputError(f"input {i} has dtype {x.dtype} but the model's parameters are {dtype}; "
                               f"convert the input (x.to({dtype})) or the model (model.to({x.dtype}))")
        if len(devices) == 1 and x.device not in devices:
            (device,) = devices
            raise IGInputError(f"input {i} is on device {x.device} but the model is on {device}; move the "
                               f"input (x.to('{device}')) or the model")
