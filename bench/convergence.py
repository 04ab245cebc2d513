"""Case 3: time to a trusted answer (relative completeness error ≤ tolerance).

igkit refines its grid adaptively until the error is under the tolerance, in three
modes run side by side: the default (``plan="auto"``: the forward plan for the LSTM,
recurrent; elsewhere a first grid sized by a path point, 9 points for the CNN's and
the molecules' small inputs and 5 for GoogLeNet's and the GPT-2's), planned
(``plan="forward"``: F on a grid of α with forward passes first, then one gradient pass
where F moves) and the five-point start
(``plan="off"``: 5 uniform points, then the same refinement rounds; the default before
first grids). Forward-only passes are timed with everything else, at their real cost.
The reference is what the IG authors' how-to tells Captum users to do: run with
8 steps, and double the step count until the convergence delta is small enough;
the user pays for every run, so gradient evaluations add up (8 + 16 + ...).
Each example is attributed on its own by both, so the comparison is of the
integration schemes alone, not of batching. Completeness within 1% bounds the
sum of the attributions, not each one, so the details also give each
contender's attribution error against a converged reference (Gauss–Legendre,
``REFERENCE_STEPS`` points), untimed. Where the seconds go: every forward the default
and Captum call is recorded and replayed with nothing around it, timed in the same
rounds (``model_alone_seconds``); the rest of each contender's seconds is its own
bookkeeping.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable

import torch
from captum.attr import IntegratedGradients

from igkit import integrated_gradients
from igkit.attribution.nested_grid import INITIAL_INTERVALS, allowed_error
from igkit.options import DEFAULT_FLOOR

from .measure import interleaved_medians, milliseconds_per_path_point
from .report import Row

FIRST_CAPTUM_STEPS = 8
REFERENCE_STEPS = 512
#: each contender is timed on an example for at least this long in all (more rounds than asked
#: where its runs are short): see :func:`bench.measure.interleaved_medians`
MIN_TIMED_SECONDS = 0.2
#: points of igkit's first adaptive grid: no example can cost fewer gradient evaluations
MINIMUM_NODES = 2 * INITIAL_INTERVALS + 1
#: contenders whose passes are also replayed with the model alone
MODEL_ALONE = ("default", "captum")


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
    forward_evaluations: int = 0
    passes: int = 0
    converged: bool = True   # within the tolerance of |ΔF| or within the absolute floor


@dataclass
class RecordedPass:
    """One call of a workload's forward: what it was given (detached), and whether gradients were on."""

    args: tuple
    grad: bool


def recorded_passes(w: Workload, p: Problem, strategy: Callable[..., Outcome], tolerance: float,
                    max_steps: int) -> list[RecordedPass]:
    """Every forward ``strategy`` calls on one example (the run is deterministic: the timed runs make
    the same calls)."""
    passes: list[RecordedPass] = []

    def forward(*args):
        passes.append(RecordedPass(tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args),
                                   torch.is_grad_enabled()))
        return w.forward(*args)

    strategy(Workload(w.name, forward, w.problems, w.notes), p, tolerance, max_steps)
    return passes


def replay(w: Workload, passes: list[RecordedPass], n_inputs: int, target: int) -> None:
    """The recorded passes and their backward passes with nothing around them: the model's share of a
    contender's seconds."""
    for one in passes:
        if not one.grad:
            with torch.no_grad():
                w.forward(*one.args)
            continue
        leaves = [a.clone().requires_grad_(True) for a in one.args[:n_inputs]]
        torch.autograd.grad(w.forward(*leaves, *one.args[n_inputs:])[:, target].sum(), leaves)


def relative_gap_error(delta: torch.Tensor, gap: torch.Tensor) -> float:
    """|completeness delta| / |F(x) − F(b)|, the same measure igkit reports."""
    return float(delta.abs().max() / gap.abs().clamp_min(1e-12))


def igkit_adaptive(w: Workload, p: Problem, tolerance: float, max_steps: int, plan: str = "auto"
                   ) -> Outcome:
    r = integrated_gradients(w.forward, p.inputs, p.baselines, target=p.target, tolerance=tolerance,
                             max_steps=max_steps, forward_args=p.forward_args, plan=plan)
    costs = r.example_costs(0)
    return Outcome(int(r.meta["gradient_evaluations"]), float(r.completeness_error.max()),
                   r.attribution_tuple, costs["forward_evaluations"], costs["passes"], all(r.meta["converged"]))


def igkit_planned(w: Workload, p: Problem, tolerance: float, max_steps: int) -> Outcome:
    """F planned with forward passes first, then gradients where F moves, on every model."""
    return igkit_adaptive(w, p, tolerance, max_steps, plan="forward")


def igkit_five_points(w: Workload, p: Problem, tolerance: float, max_steps: int) -> Outcome:
    """The grid without planning or first grids: 5 uniform points, then the same refinement rounds."""
    return igkit_adaptive(w, p, tolerance, max_steps, plan="off")


def captum_doubling(w: Workload, p: Problem, tolerance: float, max_steps: int) -> Outcome:
    """Captum IG at 8, 16, 32, ... steps until its delta is within what igkit accepts: ``tolerance``
    of |ΔF|, or the absolute floor where ΔF is too small for a ratio (GoogLeNet's random weights)."""
    with torch.no_grad():
        top = w.forward(*p.inputs, *p.forward_args)[:, p.target]
        bottom = w.forward(*p.baselines, *p.forward_args)[:, p.target]
    gap = top - bottom
    allowed = allowed_error(float(gap), float(top), float(bottom), tolerance, DEFAULT_FLOOR)
    ig = IntegratedGradients(w.forward)
    steps, paid = FIRST_CAPTUM_STEPS, 0
    while True:
        attributions, delta = ig.attribute(p.inputs, p.baselines, target=p.target,
                                           additional_forward_args=p.forward_args, n_steps=steps,
                                           method="gausslegendre", return_convergence_delta=True)
        paid += steps
        tries = steps.bit_length() - FIRST_CAPTUM_STEPS.bit_length() + 1
        error = relative_gap_error(delta, gap)
        within = float(delta.abs().max()) <= allowed
        if within or 2 * steps > max_steps:
            answer = attributions if isinstance(attributions, tuple) else (attributions,)
            return Outcome(paid, error, answer, forward_evaluations=2, passes=tries + 1, converged=within)
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


CONTENDERS: dict[str, Callable[..., Outcome]] = {
    "default": igkit_adaptive, "planned": igkit_planned, "off": igkit_five_points, "captum": captum_doubling}


def run_case(workloads: list[Workload], tolerance: float, max_steps: int, repeats: int) -> list[Row]:
    """Per workload: gradient evaluations and seconds, Captum ÷ default and Captum ÷ planned (goals ≥ 3
    and ≥ 2), and seconds plan="off" ÷ default (goal ≥ 1: the first grid auto picks costs no model time)."""
    rows = []
    for w in workloads:
        totals = {name: 0.0 for name in CONTENDERS}
        model_alone = {name: 0.0 for name in MODEL_ALONE}
        outcomes: dict[str, list[Outcome]] = {name: [] for name in CONTENDERS}
        attribution_errors: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for i, p in enumerate(w.problems):
            last: dict[str, Outcome] = {}

            def run(name: str, strategy: Callable[..., Outcome], p: Problem = p) -> Callable[[], None]:
                return lambda: last.update({name: strategy(w, p, tolerance, max_steps)})

            runs = {name: run(name, strategy) for name, strategy in CONTENDERS.items()}
            for name in MODEL_ALONE:
                passes = recorded_passes(w, p, CONTENDERS[name], tolerance, max_steps)
                runs[f"{name}, model alone"] = lambda ps=passes: replay(w, ps, len(p.inputs), p.target)
            timed = interleaved_medians(runs, repeats, warmup=1 if i == 0 else 0, seed=i,
                                        min_seconds=MIN_TIMED_SECONDS)
            for name in CONTENDERS:
                totals[name] += timed[name]
                outcomes[name].append(last[name])
            for name in MODEL_ALONE:
                model_alone[name] += timed[f"{name}, model alone"]
            reference = converged_attributions(w, p)
            for name in attribution_errors:
                attribution_errors[name].append(attribution_error(last[name].attributions, reference))
        evals = {k: sum(o.evaluations for o in v) for k, v in outcomes.items()}
        details = {
            "examples": len(w.problems), "tolerance": tolerance, "max_steps": max_steps, "repeats": repeats,
            "gradient_evaluations": evals, "seconds": totals, "model_alone_seconds": model_alone,
            "bookkeeping_ms_per_example": {name: 1000 * (totals[name] - model_alone[name]) / len(w.problems)
                                           for name in MODEL_ALONE},
            "forward_only_evaluations": {k: sum(o.forward_evaluations for o in v) for k, v in outcomes.items()},
            "passes": {k: sum(o.passes for o in v) for k, v in outcomes.items()},
            "per_example_evaluations": {k: [o.evaluations for o in v] for k, v in outcomes.items()},
            "worst_error": {k: max(o.error for o in v) for k, v in outcomes.items()},
            "not_converged": {k: sum(not o.converged for o in v) for k, v in outcomes.items()},
            "attribution_error_vs_reference": {
                "reference": f"Gauss-Legendre, {REFERENCE_STEPS} points", "per_example": attribution_errors,
                "worst": {k: max(v) for k, v in attribution_errors.items()},
                "median": {k: statistics.median(v) for k, v in attribution_errors.items()}},
            "milliseconds_per_point": pass_costs(w, w.problems[0]),
            **w.notes}
        metric = f"{w.name}, {len(w.problems)} examples to error ≤ {tolerance:g}"
        why = _evaluation_ceiling(outcomes["captum"])
        note = _pass_note(details)
        captum = "Captum doubling 8,16,.."
        rows += [
            Row("3 trusted answer", f"{metric}: gradient evaluations (Captum ÷ {name})", evals[name],
                evals["captum"], captum, evals["captum"] / evals[name], 3.0, False, "evals", details,
                why_missed=why) for name in ("default", "planned")]
        rows += [
            Row("3 trusted answer", f"{metric}: seconds (Captum ÷ {name})", totals[name], totals["captum"],
                captum, totals["captum"] / totals[name], 2.0, False, "s", details, why_missed=note)
            for name in ("default", "planned")]
        rows.append(Row("3 trusted answer", f"{metric}: seconds (5-point start ÷ default)", totals["default"],
                        totals["off"], "igkit plan=off", totals["off"] / totals["default"], 1.0, False,
                        "s", details, why_missed=note))
    return rows


def pass_costs(w: Workload, p: Problem, sizes: tuple[int, ...] = (1, 5, 17, 65)) -> dict[str, dict[int, float]]:
    """Milliseconds per path point, forward only and forward + backward, at several pass sizes: what
    a plan's forward points cost against the gradient points and passes they save."""
    return {"forward_only": milliseconds_per_path_point(w.forward, p.inputs, p.forward_args, p.target,
                                                        sizes, backward=False),
            "forward_backward": milliseconds_per_path_point(w.forward, p.inputs, p.forward_args, p.target,
                                                            sizes)}


def _pass_note(details: dict) -> str:
    """Where the time went: evaluations of each kind and passes, per contender."""
    parts = [f"{name}: {details['gradient_evaluations'][name]} gradient + "
             f"{details['forward_only_evaluations'][name]} forward-only evaluations in "
             f"{details['passes'][name]} passes" for name in CONTENDERS]
    costs = details["milliseconds_per_point"]
    ratio = {n: costs["forward_only"][n] / costs["forward_backward"][n] for n in costs["forward_only"]}
    alone, bookkeeping = details["model_alone_seconds"], details["bookkeeping_ms_per_example"]
    return (f"{'; '.join(parts)}; a forward-only point costs "
            f"{', '.join(f'{r:.2f}' for r in ratio.values())} of a gradient point at "
            f"{', '.join(map(str, ratio))} points per pass; the model alone on the same passes: default "
            f"{alone['default']:.3g} s, Captum {alone['captum']:.3g} s (Captum ÷ default "
            f"{alone['captum'] / alone['default']:.2f}), the rest is bookkeeping: "
            f"{bookkeeping['default']:.2f} ms per example for igkit, {bookkeeping['captum']:.2f} ms for Captum")


def _evaluation_ceiling(captum: list[Outcome]) -> str:
    """The most any scheme starting from igkit's coarsest grid could save on these examples."""
    first_try = sum(o.evaluations == FIRST_CAPTUM_STEPS for o in captum)
    ceiling = sum(o.evaluations for o in captum) / (len(captum) * MINIMUM_NODES)
    return (f"{first_try} of {len(captum)} examples needed only Captum's first try ({FIRST_CAPTUM_STEPS} "
            f"steps: smooth paths); a scheme that stopped at igkit's coarsest grid ({MINIMUM_NODES} "
            f"points) on every example would save {ceiling:.2f}x, the ceiling for these examples")
