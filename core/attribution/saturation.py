"""Saturation analysis: how the score and inner activations move along α·x (Figures 2, 12, 13)."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from igkit.attribution.baselines import Baselines, as_input_tuple, resolve_baselines
from igkit.attribution.path import PathEvaluator
from igkit.attribution.targets import Target, per_example_targets, select_scores
from igkit.errors import IGInputError


def _alphas(alphas: Sequence[float] | int | None) -> torch.Tensor:
    if alphas is None:
        alphas = 21
    if isinstance(alphas, int):
        if alphas < 2:
            raise IGInputError(f"a saturation curve needs at least 2 alphas, got {alphas}")
        return torch.linspace(0, 1, alphas, dtype=torch.float64)
    return torch.as_tensor(list(alphas), dtype=torch.float64)


def _evaluator(forward, inputs, baselines, target, forward_args, batch_size) -> PathEvaluator:
    xs, _ = as_input_tuple(inputs)
    bs = resolve_baselines(baselines, xs)
    if bs[0].shape[0] != 1:
        raise IGInputError("saturation curves take a single baseline, not a stack")
    return PathEvaluator(forward, xs, bs, per_example_targets(target, xs[0].shape[0]),
                         forward_args, batch_size)


@torch.no_grad()
def score_curve(forward: Callable[..., torch.Tensor], inputs, *, target: Target = None,
                alphas: Sequence[float] | int | None = None, baselines: Baselines = None,
                forward_args: tuple = (), batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """Score of the target along the path, per example: ``{"alpha": [A], "score": [B, A]}``.

    When the model returns one score per class, ``score`` is the pre-softmax
    logit and ``probability`` the softmax probability (Figure 2b and 2a).
    """
    ev = _evaluator(forward, inputs, baselines, target, forward_args, batch_size)
    alpha = _alphas(alphas)
    B, A = ev.batch, alpha.numel()
    ex = torch.arange(B, device=ev.device).repeat(A)
    al = alpha.to(ev.device).repeat_interleave(B)
    logits, probs = [], []
    for start in range(0, ex.numel(), ev.batch_size):
        sl = slice(start, start + ev.batch_size)
        scaled, args = ev.points(ex[sl], torch.zeros_like(ex[sl]), al[sl])
        out = forward(*scaled, *args)
        logits.append(select_scores(out, ev.targets, ex[sl]))
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] > 1 \
                and not callable(ev.targets):
            probs.append(select_scores(out.softmax(1), ev.targets, ex[sl]))
    curve = {"alpha": alpha, "score": torch.cat(logits).reshape(A, B).T.contiguous()}
    if probs:
        curve["probability"] = torch.cat(probs).reshape(A, B).T.contiguous()
    return curve


@torch.no_grad()
def layer_saturation(forward: Callable[..., torch.Tensor], inputs, layers: Mapping[str, torch.nn.Module],
                     *, alphas: Sequence[float] | int | None = None, baselines: Baselines = None,
                     forward_args: tuple = (), batch_size: int | None = None
                     ) -> dict[str, dict[str, torch.Tensor]]:
    """L2 and cosine distance of each layer's activations at b + α(x − b) to those at x.

    ``layers`` maps a name to a submodule (captured with a forward hook). Returns
    ``{name: {"alpha": [A], "l2": [B, A], "cosine": [B, A]}}`` (Figure 12).
    """
    ev = _evaluator(forward, inputs, baselines, None, forward_args, batch_size)
    alpha = _alphas(alphas)
    B, A = ev.batch, alpha.numel()
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def hook_for(name):
        def hook(_module, _inp, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            captured[name].append(out.detach().reshape(out.shape[0], -1).float())
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in layers.items()]
    try:
        ex = torch.arange(B, device=ev.device).repeat(A + 1)
        al = torch.cat([alpha, torch.ones(1, dtype=alpha.dtype)]).to(ev.device).repeat_interleave(B)
        for start in range(0, ex.numel(), ev.batch_size):
            sl = slice(start, start + ev.batch_size)
            scaled, args = ev.points(ex[sl], torch.zeros_like(ex[sl]), al[sl])
            forward(*scaled, *args)
    finally:
        for h in handles:
            h.remove()
    report = {}
    for name, chunks in captured.items():
        if not chunks:
            raise IGInputError(f"layer {name!r} never ran during forward; is it part of the model?")
        acts = torch.cat(chunks).reshape(A + 1, B, -1)
        ref = acts[-1]
        path = acts[:-1]
        l2 = (path - ref).norm(dim=2)
        cosine = 1 - torch.nn.functional.cosine_similarity(path, ref.expand_as(path), dim=2, eps=1e-12)
        report[name] = {"alpha": alpha, "l2": l2.T.contiguous(), "cosine": cosine.T.contiguous()}
    return report
