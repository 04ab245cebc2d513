"""Attribution methods behind one registry: IG, saliency, gradient × input, interior
gradients and SmoothGrad. Plugins add methods through the ``igkit_methods`` hook."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from igkit.attribution.baselines import Baselines, as_input_tuple, resolve_baselines
from igkit.attribution.integrated import integrated_gradients
from igkit.attribution.path import PathEvaluator
from igkit.attribution.targets import Target, per_example_targets
from igkit.errors import IGInputError
from igkit.methods.backprop import grad_cam, guided_backprop
from igkit.methods.blur_ig import blur_ig_method
from igkit.methods.expected_gradients import expected_gradients_method, multi_baseline_ig_method
from igkit.methods.guided_ig import guided_ig_method
from igkit.methods.occlusion import occlusion
from igkit.methods.protocol import AttributionMethod, Attributions
from igkit.methods.xrai import xrai_method

def gradients_at(forward: Callable[..., torch.Tensor], inputs: Attributions, alphas: Sequence[float],
                 baselines: Baselines = None, *, target: Target = None, forward_args: tuple = (),
                 batch_size: int | None = None) -> tuple[torch.Tensor, ...]:
    """Interior gradients ∇F(b + α(x − b)) for each α: per input, a tensor ``[len(alphas), B, ...]``."""
    xs, _ = as_input_tuple(inputs)
    bs = resolve_baselines(baselines, xs)
    if bs[0].shape[0] != 1:
        raise IGInputError("interior gradients take a single baseline, not a stack")
    ev = PathEvaluator(forward, xs, bs, per_example_targets(target, xs[0].shape[0]), forward_args,
                       batch_size)
    alpha_t = torch.as_tensor(list(alphas), dtype=torch.float64)
    if alpha_t.numel() == 0 or bool(((alpha_t < 0) | (alpha_t > 1)).any()):
        raise IGInputError(f"alphas must be a non-empty list of values in [0, 1], got {list(alphas)}")
    B, A, dev = xs[0].shape[0], alpha_t.numel(), ev.device
    ex = torch.arange(B, device=dev).repeat(A)
    al = alpha_t.to(dev).repeat_interleave(B)
    chunks: list[list[torch.Tensor]] = [[] for _ in xs]
    for _, _, grads in ev.rows(ex, torch.zeros_like(ex), al):
        for i, g in enumerate(grads):
            chunks[i].append(g)
    return tuple(torch.cat(c).reshape(A, B, *x.shape[1:]) for c, x in zip(chunks, xs))


def _repack(values: tuple[torch.Tensor, ...], inputs: Attributions) -> Attributions:
    return values if isinstance(inputs, (tuple, list)) else values[0]


def ig_method(forward, inputs, baselines=None, *, target=None, **options) -> Attributions:
    """Integrated gradients (see :func:`igkit.integrated_gradients` for options)."""
    return integrated_gradients(forward, inputs, baselines, target=target, **options).attributions


def saliency(forward, inputs, baselines=None, *, target=None, absolute: bool = False,
             forward_args: tuple = (), batch_size: int | None = None) -> Attributions:
    """The gradient at the input (what saturates); ``absolute`` gives |gradient|."""
    grads = tuple(g[0] for g in gradients_at(forward, inputs, [1.0], None, target=target,
                                             forward_args=forward_args, batch_size=batch_size))
    return _repack(tuple(g.abs() for g in grads) if absolute else grads, inputs)


def grad_x_input(forward, inputs, baselines=None, *, target=None, forward_args: tuple = (),
                 batch_size: int | None = None) -> Attributions:
    """Gradient × (input − baseline): one-point IG, exact for linear models."""
    xs, _ = as_input_tuple(inputs)
    bs = resolve_baselines(baselines, xs)
    grads = gradients_at(forward, inputs, [1.0], None, target=target, forward_args=forward_args,
                         batch_size=batch_size)
    return _repack(tuple(g[0] * (x - b.mean(0)) for g, x, b in zip(grads, xs, bs)), inputs)


def interior_gradient(forward, inputs, baselines=None, *, target=None, alpha: float = 0.5,
                      forward_args: tuple = (), batch_size: int | None = None) -> Attributions:
    """The gradient at the counterfactual b + α(x − b) for one chosen α."""
    grads = gradients_at(forward, inputs, [alpha], baselines, target=target,
                         forward_args=forward_args, batch_size=batch_size)
    return _repack(tuple(g[0] for g in grads), inputs)


def smoothgrad(forward, inputs, baselines=None, *, target=None, base: str | AttributionMethod = "saliency",
               samples: int = 25, noise: float = 0.15, seed: int | None = 0, **options) -> Attributions:
    """Average ``base`` over ``samples`` noisy copies of the input (σ = noise × per-example range)."""
    if samples < 1 or noise < 0:
        raise IGInputError(f"smoothgrad needs samples ≥ 1 and noise ≥ 0, got {samples} and {noise}")
    method = get_method(base) if isinstance(base, str) else base
    xs, _ = as_input_tuple(inputs)
    generators = []
    for _ in range(xs[0].shape[0]):  # one per example: its noise does not depend on its batch
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed) if seed is not None else gen.seed()
        generators.append(gen)
    total: list[torch.Tensor] | None = None
    for _ in range(samples):
        noisy = tuple(x + noise * _range(x) * _per_example_noise(x, generators) for x in xs)
        attr = method(forward, _repack(noisy, inputs), baselines, target=target, **options)
        attr_t = attr if isinstance(attr, tuple) else (attr,)
        total = list(attr_t) if total is None else [t + a for t, a in zip(total, attr_t)]
    return _repack(tuple(t / samples for t in total), inputs)


def _per_example_noise(x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    return torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators]).to(x)


def _range(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    spread = (flat.max(1).values - flat.min(1).values).clamp_min(1e-12)
    return spread.reshape(-1, *([1] * (x.dim() - 1)))



BUILTIN_METHODS: dict[str, AttributionMethod] = {
    "integrated_gradients": ig_method,
    "saliency": saliency,
    "grad_x_input": grad_x_input,
    "interior_gradient": interior_gradient,
    "smoothgrad": smoothgrad,
    "occlusion": occlusion,
    "guided_backprop": guided_backprop,
    "grad_cam": grad_cam,
    "expected_gradients": expected_gradients_method,
    "multi_baseline_ig": multi_baseline_ig_method,
    "blur_ig": blur_ig_method,
    "guided_ig": guided_ig_method,
    "xrai": xrai_method,
}
METHODS: dict[str, AttributionMethod] = dict(BUILTIN_METHODS)


def refresh_plugin_methods() -> None:
    """Rebuild :data:`METHODS` from the built-ins plus every registered plugin's ``igkit_methods``
    (plugins come and go with :func:`igkit.register`, so every lookup rebuilds)."""
    from igkit.plugin_manager import get_plugin_manager

    METHODS.clear()
    METHODS.update(BUILTIN_METHODS)
    for extra in get_plugin_manager().hook.igkit_methods():
        METHODS.update(extra or {})


def get_method(name: str) -> AttributionMethod:
    """The method called ``name``; plugins' methods included."""
    refresh_plugin_methods()
    if name not in METHODS:
        raise IGInputError(f"unknown attribution method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def attribute(name: str, forward: Callable[..., torch.Tensor], inputs: Attributions,
              baselines: Baselines = None, *, target: Target = None, **options: Any) -> Attributions:
    """Run the registered method ``name``; e.g. ``attribute("smoothgrad", f, x, target=3)``."""
    return get_method(name)(forward, inputs, baselines, target=target, **options)
