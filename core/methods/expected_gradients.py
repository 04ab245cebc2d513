"""Expected Gradients (Erion et al. 2021) and multiple-baseline IG: baselines from a data set.

Both explain F(x) against the *distribution* of reference examples instead of one
chosen baseline: completeness holds for F(x) − E_b[F(b)]. Expected Gradients draws
one (baseline, α) pair per sample; multiple-baseline IG integrates every reference's
path deterministically (and adaptively, with ``tolerance``).
"""
from __future__ import annotations

from typing import Callable

import torch

from igkit.attribution.baselines import Baselines, as_input_tuple
from igkit.attribution.guard import check_examples, check_model_matches, modules_behind
from igkit.attribution.integrated import integrated_gradients
from igkit.attribution.path import PathEvaluator
from igkit.attribution.result import IGResult
from igkit.attribution.targets import Target, per_example_targets
from igkit.errors import IGInputError
from igkit.methods.backprop import at_points

Attributions = torch.Tensor | tuple[torch.Tensor, ...]


def expected_gradients(forward: Callable[..., torch.Tensor], inputs: Attributions,
                       reference: Attributions, *, target: Target = None, samples: int = 64,
                       seed: int | None = 0, forward_args: tuple = (), batch_size: int | None = None
                       ) -> IGResult:
    """Expected Gradients: mean of (x − b)·∇F(b + α(x − b)), b drawn from ``reference``, α ~ U(0, 1).

    ``reference`` holds K examples, ``[K, *features]`` per input. Baselines are drawn
    stratified: each example cycles through the references in its own seeded random
    order (drawn from a generator of its own, so an example's answer does not depend on which
    examples share its batch) (every reference used equally often when ``samples`` is a multiple of K,
    which makes the answer exact for linear models); α is uniform. One sample is one
    gradient, so there is no step count to adapt: the completeness gap against
    F(x) − mean F(drawn baselines) shrinks like 1/√samples.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise IGInputError(f"expected_gradients needs samples ≥ 1, got {samples!r}")
    xs, is_tuple = as_input_tuple(inputs)
    check_examples(xs)
    check_model_matches(modules_behind(forward), xs)
    refs = _reference_stack(reference, xs)
    B, K, dev = xs[0].shape[0], refs[0].shape[0], xs[0].device
    orders, alphas_drawn = [], []
    for _ in range(B):  # each example its own generator: its draws do not depend on its batch
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed) if seed is not None else gen.seed()
        orders.append(torch.randperm(K, generator=gen))
        alphas_drawn.append(torch.rand(samples, generator=gen, dtype=torch.float64))
    order = torch.stack(orders, 1)                                                       # [K, B]
    k = order[torch.arange(samples) % K].to(dev)                                         # [S, B]
    alpha = torch.stack(alphas_drawn, 1).to(dev)                                         # [S, B]
    ex = torch.arange(B, device=dev).repeat(samples)
    ev = PathEvaluator(forward, xs, tuple(r.expand(K, B, *r.shape[2:]) for r in refs),
                       per_example_targets(target, B), forward_args, batch_size)
    attr = [torch.zeros_like(x) for x in xs]
    path = torch.empty(samples * B, dtype=torch.float64, device=dev)
    for sl, scores, grads in ev.rows(ex, k.flatten(), alpha.flatten()):
        path[sl] = scores.double()
        for i, g in enumerate(grads):
            diff = xs[i][ex[sl]] - refs[i][k.flatten()[sl], 0]
            attr[i].index_add_(0, ex[sl], diff * g / samples)
    ends = torch.cat([ex[:B], ex])
    end_points = tuple(torch.cat([x, r[k.flatten(), 0]]) for x, r in zip(xs, refs))
    end_scores, _ = at_points(forward, end_points, ends, per_example_targets(target, B), forward_args,
                              B, grad=False, batch_size=batch_size)
    dtype = xs[0].dtype
    alphas, path_scores = [], []
    for e in range(B):
        a, order_e = alpha[:, e].sort()
        alphas.append(a)
        path_scores.append(path.reshape(samples, B)[order_e, e].to(dtype))
    attributions = tuple(attr)
    return IGResult(
        attributions=attributions if is_tuple else attributions[0],
        score_input=end_scores[:B],
        score_baseline=end_scores[B:].reshape(samples, B).mean(0),
        alphas=alphas,
        path_scores=path_scores,
        steps=samples,
        method="expected_gradients",
        meta={"gradient_evaluations": ev.evaluations, "n_references": K, "seed": seed,
              "baseline": "mean F over the drawn baselines"},
    )


def multi_baseline_ig(forward: Callable[..., torch.Tensor], inputs: Attributions,
                      reference: Attributions, *, target: Target = None, samples: int | None = None,
                      seed: int | None = 0, **ig_options) -> IGResult:
    """IG averaged over the K baselines in ``reference`` (or ``samples`` of them drawn with ``seed``).

    The deterministic counterpart (and the limit) of :func:`expected_gradients`:
    ``ig_options`` go to :func:`igkit.integrated_gradients`, so ``steps``/``method``
    or adaptive ``tolerance``/``max_steps`` apply, and ``forward_args``/``batch_size``.
    """
    xs, _ = as_input_tuple(inputs)
    refs = _reference_stack(reference, xs)
    if samples is not None:
        K = refs[0].shape[0]
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= K:
            raise IGInputError(f"samples must pick 1..{K} of the references, got {samples!r}")
        gen = torch.Generator(device="cpu")
        if seed is not None:
            gen.manual_seed(seed)
        pick = torch.randperm(K, generator=gen)[:samples].to(xs[0].device)
        refs = tuple(r[pick] for r in refs)
    stack = refs if isinstance(inputs, (tuple, list)) else refs[0]
    return integrated_gradients(forward, inputs, stack, target=target, **ig_options)


def _reference_stack(reference: Attributions, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """References ``[K, *features]`` per input, as ``[K, 1, *features]`` (one stack for all examples)."""
    if reference is None:
        raise IGInputError("expected gradients needs reference= (K examples from the data set, "
                           "[K, *features] per input)")
    refs = tuple(reference) if isinstance(reference, (tuple, list)) else (reference,)
    if len(refs) != len(xs):
        raise IGInputError(f"got {len(refs)} reference tensors for {len(xs)} inputs; give one per input")
    out = []
    for i, (r, x) in enumerate(zip(refs, xs)):
        if not isinstance(r, torch.Tensor) or r.dim() != x.dim() or r.shape[1:] != x.shape[1:]:
            shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise IGInputError(f"reference for input {i} must be [K, {', '.join(map(str, x.shape[1:]))}]"
                               f" (K examples), got {shape}")
        out.append(r.detach().to(dtype=x.dtype, device=x.device).unsqueeze(1))
    if len({r.shape[0] for r in out}) != 1:
        raise IGInputError("every input needs the same number K of reference examples")
    if out[0].shape[0] == 0:
        raise IGInputError("the reference holds no examples (K = 0); give at least one reference example "
                           "per input, [K, *features]")
    for i, r in enumerate(out):
        if not bool(torch.isfinite(r).all()):
            raise IGInputError(f"the reference for input {i} holds NaN or infinite values; give finite "
                               f"reference examples")
    return tuple(out)


def expected_gradients_method(forward: Callable[..., torch.Tensor], inputs: Attributions,
                              baselines: Baselines = None, *, target: Target = None,
                              reference: Attributions | None = None, **options) -> Attributions:
    """Expected Gradients: IG, random α, baselines drawn from data; needs reference= ([K, *features])."""
    return expected_gradients(forward, inputs, _registry_reference(reference, baselines),
                              target=target, **options).attributions


def multi_baseline_ig_method(forward: Callable[..., torch.Tensor], inputs: Attributions,
                             baselines: Baselines = None, *, target: Target = None,
                             reference: Attributions | None = None, **options) -> Attributions:
    """IG averaged over K baselines from a data set (deterministic Expected Gradients); needs reference=."""
    return multi_baseline_ig(forward, inputs, _registry_reference(reference, baselines),
                             target=target, **options).attributions


def _registry_reference(reference: Attributions | None, baselines: Baselines) -> Attributions:
    """The registry passes a domain's ``baselines``; a ``[K, *features]`` stack there is the reference."""
    if reference is not None and baselines is not None:
        raise IGInputError("give the reference examples once: reference= or baselines, not both")
    return reference if reference is not None else baselines
