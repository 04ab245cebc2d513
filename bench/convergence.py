"""Case 3: time to a trusted answer (relative completeness error ≤ tolerance).

igkit refines its grid adaptively until the error is under the tolerance.
The reference is what the IG authors' how-to tells Captum users to do: run with
8 steps, and double the step count until the convergence delta is small enough;
the user pays for every run, so gradient evaluations add up (8 + 16 + ...).
Each example is attributed on its own by both, so the comparison is of the
integration schemes alone, not of batching. Completeness within 1% bounds the
sum of the attributions, not each one, so the details also give each
contender's attribution error against a converged reference (Gauss–Legendre,
``REFERENCE_STEPS`` points), untimed.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable

import torch
from captum.attr import IntegratedGradients

from igkit import integrated_gradients
from igkit.nested_grid import INITIAL_INTERVALS

from .measure import interleaved_medians
from .report import Row

FIRST_CAPTUM_STEPS = 8
REFERENCE_STEPS = 512
#: points of igkit's first adaptive grid: no example can cost fewer gradient evaluations
MINIMUM_NODES = 2 * INITIAL_INTERVALS + 1


@dataclass
class Problem:
    """One example: inputs (each with batch dimension 1), baselines, target, structure args."""

    inputs: tuple[torch.Tensor, ...]
    baselines: tuple[torch.Tensor, ...]
    target: int
    forward_args: tuple = ()


@dataclass
class Workload:
    """A model's score function and the examples it is attributed on."""

    name: str
    forward: Callable[..., torch.Tensor]
    problems: list[Problem]
    notes: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What one contender paid for one example, the error it reached, and its answer."""

    evaluations: int
    error: float
    attributions: tuple[torch.Tensor, ...]


def relative_gap_error(delta: torch.Tensor, gap: torch.Tensor) -> float:
    """|completeness delta| / |F(x) − F(b)|, the same measure igkit reports."""
    return float(delta.abs().max() / gap.abs().clamp_min(1e-12))


def igkit_adaptive(w: Workload, p: Problem, tolerance: float, max_steps: int) -> Outcome:
    r = integrated_gradients(w.forward, p.inputs, p.baselines, target=p.target, tolerance=tolerance,
                             max_steps=max_steps, forward_args=p.forward_args)
    return Outcome(int(r.meta["gradient_evaluations"]), float(r.completeness_error.max()),
                   r.attribution_tuple)


def captum_doubling(w: Workload, p: Problem, tolerance: float, max_steps: int) -> Outcome:
    """Captum IG at 8, 16, 32, ... steps until the relative delta is under ``tolerance``."""
    with torch.no_grad():
        gap = w.forward(*p.inputs, *p.forward_args)[:, p.target] - \
            w.forward(*p.baselines, *p.forward_args)[:, p.target]
    ig = IntegratedGradients(w.forward)
    steps, paid = FIRST_CAPTUM_STEPS, 0
    while True:
        attributions, delta = ig.attribute(p.inputs, p.baselines, target=p.target,
                                           additional_forward_args=p.forward_args, n_steps=steps,
                                           method="gausslegendre", return_convergence_delta=True)
        paid += steps
        error = relative_gap_error(delta, gap)
        if error <= tolerance or 2 * steps > max_steps:
            answer = attributions if isinstance(attributions, tuple) else (attributions,)
            return Outcome(paid, error, answer)
        steps *= 2


def converged_attributions(w: Workload, p: Problem) -> torch.Tensor:
    """All of an example's attributions, flattened, at ``REFERENCE_STEPS`` Gauss–Legendre points."""
    r = integrated_gradients(w.forward, p.inputs, p.baselines, target=p.target, steps=REFERENCE_STEPS,
                             forward_args=p.forward_args)
    return torch.cat([a.detach().flatten() for a in r.attribution_tuple])


def attribution_error(answer: tuple[torch.Tensor, ...], reference: torch.Tensor) -> float:
    """‖answer − reference‖ / ‖reference‖ over all features."""
    flat = torch.cat([a.detach().flatten() for a in answer])
    return float((flat - reference).norm() / reference.norm().clamp_min(1e-30))


def run_case(workloads: list[Workload], tolerance: float, max_steps: int, repeats: int) -> list[Row]:
    """Two rows per workload: gradient evaluations and seconds, Captum ÷ igkit (≥ 4 and ≥ 3)."""
    rows = []
    for w in workloads:
        totals = {"igkit": 0.0, "captum": 0.0}
        outcomes: dict[str, list[Outcome]] = {"igkit": [], "captum": []}
        attribution_errors: dict[str, list[float]] = {"igkit": [], "captum": []}
        for i, p in enumerate(w.problems):
            last: dict[str, Outcome] = {}

            def run(name: str, strategy: Callable[..., Outcome], p: Problem = p) -> Callable[[], None]:
                return lambda: last.update({name: strategy(w, p, tolerance, max_steps)})

            runs = {"igkit": run("igkit", igkit_adaptive), "captum": run("captum", captum_doubling)}
            for name, t in interleaved_medians(runs, repeats, warmup=1 if i == 0 else 0).items():
                totals[name] += t
                outcomes[name].append(last[name])
            reference = converged_attributions(w, p)
            for name in attribution_errors:
                attribution_errors[name].append(attribution_error(last[name].attributions, reference))
        evals = {k: sum(o.evaluations for o in v) for k, v in outcomes.items()}
        details = {
            "examples": len(w.problems), "tolerance": tolerance, "max_steps": max_steps, "repeats": repeats,
            "gradient_evaluations": evals, "seconds": totals,
            "per_example_evaluations": {k: [o.evaluations for o in v] for k, v in outcomes.items()},
            "worst_error": {k: max(o.error for o in v) for k, v in outcomes.items()},
            "not_converged": {k: sum(o.error > tolerance for o in v) for k, v in outcomes.items()},
            "attribution_error_vs_reference": {
                "reference": f"Gauss-Legendre, {REFERENCE_STEPS} points", "per_example": attribution_errors,
                "worst": {k: max(v) for k, v in attribution_errors.items()},
                "median": {k: statistics.median(v) for k, v in attribution_errors.items()}},
            **w.notes}
        metric = f"{w.name}, {len(w.problems)} examples to error ≤ {tolerance:g}"
        why = _evaluation_ceiling(outcomes["captum"])
        rows += [
            Row("3 trusted answer", f"{metric}: gradient evaluations (Captum ÷ igkit)", evals["igkit"],
                evals["captum"], "Captum doubling 8,16,..", evals["captum"] / evals["igkit"], 4.0, False,
                "evals", details, why_missed=why),
            Row("3 trusted answer", f"{metric}: seconds (Captum ÷ igkit)", totals["igkit"], totals["captum"],
                "Captum doubling 8,16,..", totals["captum"] / totals["igkit"], 3.0, False, "s", details,
                why_missed="seconds follow the evaluations of the row above, plus one pass per refinement "
                           "round for igkit")]
    return rows


def _evaluation_ceiling(captum: list[Outcome]) -> str:
    """The most any scheme starting from igkit's coarsest grid could save on these examples."""
    first_try = sum(o.evaluations == FIRST_CAPTUM_STEPS for o in captum)
    ceiling = sum(o.evaluations for o in captum) / (len(captum) * MINIMUM_NODES)
    return (f"{first_try} of {len(captum)} examples needed only Captum's first try ({FIRST_CAPTUM_STEPS} "
            f"steps: smooth paths); a scheme that stopped at igkit's coarsest grid ({MINIMUM_NODES} "
            f"points) on every example would save {ceiling:.2f}x, the ceiling for these examples")
