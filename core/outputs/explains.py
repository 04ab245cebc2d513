"""What an output explains, in words every picture, table, page and summary repeats.

Why: attributions are differences from a baseline, so a heat map read without the model, the
target, F(input), F(baseline) and the baseline itself is easy to misread (a molecule the model
calls negative drawn mostly red). :func:`describe` gathers these from one item's
:class:`~igkit.domain.Attribution`; :func:`caption_lines` turns them into the lines every
domain writes into its titles and pages; the same dict goes into ``summary.json``.

Two honesty checks live here too: :func:`flat_path` (F(input) ≈ F(baseline): nothing to
attribute) and :func:`shares_mislead` (|ΔF| small against the attributions: percentages of ΔF
explode, so outputs show absolute values and say why).
"""
from __future__ import annotations

import math
from typing import Any

#: F(input) and F(baseline) closer than this share of max(|F(input)|, |F(baseline)|): nothing to attribute
FLAT_RELATIVE = 1e-3
#: percentages of ΔF are shown only while |ΔF| is at least this share of Σ|attributions|
SHARE_MIN_RATIO = 0.25


def flat_path(score_input: float, score_baseline: float) -> bool:
    """True when F(input) ≈ F(baseline): the attributions must sum to ~0 and say nothing."""
    gap = abs(score_input - score_baseline)
    return gap <= FLAT_RELATIVE * max(abs(score_input), abs(score_baseline)) or gap == 0.0


def shares_mislead(difference: float, absolute_total: float) -> str | None:
    """Why shares of ΔF would mislead (|ΔF| small against Σ|attributions|), or None if they are fine."""
    if absolute_total > 0 and abs(difference) < SHARE_MIN_RATIO * absolute_total:
        return (f"|F(input) − F(baseline)| = {abs(difference):.3g} is small against Σ|attributions| = "
                f"{absolute_total:.3g} (parts that cancel): percentages of it would be huge and "
                f"meaningless, so absolute values are shown")
    return None


def describe(attribution: Any, other_scale: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a reader needs to know what one item's attributions explain (JSON values).

    ``other_scale`` (``{"name", "input", "baseline"}``) gives F on the other scale (probability
    beside a logit, or the logit beside a probability) where the domain can compute it.
    """
    prepared, summary = attribution.prepared, attribution.summary
    fx, fb = summary["score_input"], summary["score_baseline"]
    absolute_total = float(sum(float(a.abs().sum()) for a in attribution.result.attribution_tuple))
    target = prepared.label or ("" if prepared.target is None else str(prepared.target))
    found = {"model": dict(attribution.model), "target": target, "target_meaning": prepared.target_meaning,
             "scale": prepared.scale or "score", "score_input": fx, "score_baseline": fb,
             "difference": fx - fb, "other_scale": other_scale, "baseline": prepared.baseline_name or "",
             "attribution_sum": summary["attribution_sum"], "completeness_error": summary["completeness_error"],
             "converged": summary.get("converged"), "converged_by": summary.get("converged_by"),
             "feature_error": summary.get("feature_error"),
             "flat": flat_path(fx, fb), "shares_reason": shares_mislead(fx - fb, absolute_total)}
    found["lines"] = caption_lines(found)
    return found


def _on_scales(value: float, scale: str, other: dict[str, Any] | None, key: str) -> str:
    text = f"{value:.4g} ({scale})"
    if other and other.get(key) is not None and math.isfinite(other[key]):
        text += f", {other['name']} {other[key]:.4g}"
    return text


def convergence_words(converged: bool | None, converged_by: str | None) -> str:
    """How the completeness check ended, in words (one meaning of converged everywhere)."""
    if converged is None:
        return "fixed rule, no tolerance asked"
    if not converged:
        return "NOT converged: raise --max-steps or check the model"
    if converged_by == "absolute floor":
        return ("converged by the absolute floor: F(input) − F(baseline) is so small that the relative "
                "error means little")
    return "converged within the relative tolerance"


def caption_lines(d: dict[str, Any]) -> list[str]:
    """The lines under every title: model, target, F on both scales, baseline, completeness."""
    model = d.get("model") or {}
    lines = []
    if model.get("name"):
        lines.append(f"model: {model['name']}" + (f" (weights {model['digest']})" if model.get("digest") else ""))
    target = f"target: {d['target']}" if d.get("target") else "target: the model's score"
    if d.get("target_meaning"):
        target += f" — {d['target_meaning']}"
    lines.append(target)
    lines.append(f"F(input) = {_on_scales(d['score_input'], d['scale'], d.get('other_scale'), 'input')}; "
                 f"F(baseline) = {_on_scales(d['score_baseline'], d['scale'], d.get('other_scale'), 'baseline')}"
                 + (f"; baseline: {d['baseline']}" if d.get("baseline") else ""))
    lines.append(f"Σ attributions = {d['attribution_sum']:.4g} vs F(input) − F(baseline) = {d['difference']:.4g}: "
                 f"completeness error {d['completeness_error']:.2%}, "
                 f"{convergence_words(d.get('converged'), d.get('converged_by'))}")
    if d.get("feature_error") is not None:
        lines.append(f"estimated error per feature: {d['feature_error']:.2%} of the attributions' L2 norm "
                     f"(differences between integration rules on each interval of the path)")
    if d.get("flat"):
        lines.append("warning: F(input) ≈ F(baseline), so there is nothing to attribute: the colours show "
                     "noise; try another baseline or target")
    return lines


def headline(d: dict[str, Any]) -> str:
    """One short line for a picture's title: target, F(input) against F(baseline)."""
    target = d.get("target") or "score"
    return (f"{target}: F(input) {d['score_input']:.3g} vs F(baseline) {d['score_baseline']:.3g} "
            f"({d['scale']})")
