"""Writing explanations as a terminal table, Markdown, CSV, JSON and coloured HTML (Figures 9, 10)."""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Sequence

from .explainer import Explanation

OOV_MARK = "*"
#: the baseline's probability is shown when it is at least this share of the prediction's
BASELINE_SHOWN_ABOVE = 0.01


def headline(exp: Explanation) -> str:
    """"Prediction for WORD: p, total integrated gradient: s" (+ the baseline's score when it matters)."""
    line = f"Prediction for {exp.target_word}: {exp.probability:.4f}, total integrated gradient: {exp.total_ig:.4f}"
    if exp.baseline_probability > BASELINE_SHOWN_ABOVE * exp.probability:
        line += f" (baseline score: {exp.baseline_probability:.4f})"
    if exp.target_word != exp.predicted_word:
        line += f" [the model's own prediction: {exp.predicted_word}]"
    return line


def completeness_line(exp: Explanation) -> str:
    """The check that the attributions add up to p(input) − p(baseline)."""
    s = exp.summary
    gap = s["score_input"] - s["score_baseline"]
    return (f"completeness: total IG {s['attribution_sum']:.6f} vs p(context) - p(baseline) {gap:.6f}: "
            f"error {100 * s['completeness_error']:.3f}% ({s['path_points']} path points, {s['method']})")


def _columns(scale: bool) -> tuple[str, str, float]:
    suffix, factor = (" (*1e-3)", 1e3) if scale else ("", 1.0)
    return f"Integrated gradients{suffix}", f"Gradients{suffix}", factor


def _word(exp: Explanation, i: int) -> str:
    return exp.context.tokens[i] + (OOV_MARK if exp.context.oov[i] else "")


def terminal_table(exp: Explanation, scale: bool = False) -> str:
    """An aligned plain-text table: word | IG | gradient, headline above, check below."""
    ig_head, grad_head, factor = _columns(scale)
    width = max([len("Sentence")] + [len(_word(exp, i)) + 1 for i in range(len(exp.ig))])
    lines = [headline(exp), f"{'Sentence':<{width}}  {ig_head:>26}  {grad_head:>20}"]
    lines += [f"{_word(exp, i):<{width}}  {factor * exp.ig[i]:>26.4f}  {factor * exp.gradient[i]:>20.4f}"
              for i in range(len(exp.ig))]
    lines.append(completeness_line(exp))
    if any(exp.context.oov):
        lines.append(f"{OOV_MARK} not in the vocabulary: read as <unk>")
    return "\n".join(lines)


def markdown_table(exp: Explanation, scale: bool = False) -> str:
    """The same table in Markdown, to paste into a paper or an issue."""
    ig_head, grad_head, factor = _columns(scale)
    lines = [f"**{headline(exp)}**", "", f"| Sentence | {ig_head} | {grad_head} |", "|---|---:|---:|"]
    lines += [f"| {_word(exp, i)} | {factor * exp.ig[i]:.4f} | {factor * exp.gradient[i]:.4f} |"
              for i in range(len(exp.ig))]
    lines += ["", completeness_line(exp)]
    if any(exp.context.oov):
        lines.append(f"\n{OOV_MARK} not in the vocabulary: read as `<unk>`")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, explanations: Sequence[Explanation]) -> Path:
    """One row per context word: context, position, word, oov, target, probability, IG, gradient."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["context", "position", "word", "oov", "target", "probability", "integrated_gradient",
                         "gradient"])
        for exp in explanations:
            for i, word in enumerate(exp.context.tokens):
                writer.writerow([exp.context.name, i, word, int(exp.context.oov[i]), exp.target_word,
                                 f"{exp.probability:.8g}", f"{exp.ig[i]:.8g}", f"{exp.gradient[i]:.8g}"])
    return path


def write_json(path: Path, explanations: Sequence[Explanation], failed: dict[str, str]) -> Path:
    """Every explanation (core summary fields + per-word values) and every failed context with its reason."""
    path.write_text(json.dumps({"explanations": [e.to_dict() for e in explanations], "failed": failed},
                               indent=1) + "\n")
    return path


def _colour(value: float, peak: float) -> str:
    """Green for positive, red for negative; opacity ∝ |value| / the largest |value| on the page."""
    strength = min(abs(value) / peak, 1.0) if peak > 0 else 0.0
    rgb = "0,150,0" if value >= 0 else "210,0,0"
    return f"rgba({rgb},{0.85 * strength:.3f})"


def html_page(explanations: Sequence[Explanation], scale: bool = False, title: str = "Next-word attribution"
              ) -> str:
    """A self-contained page: each context with words coloured by IG, and its table."""
    ig_head, grad_head, factor = _columns(scale)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             ".ctx span{padding:2px 4px;margin:1px;border-radius:3px;display:inline-block}"
             ".next{border:1px dashed #555}table{border-collapse:collapse;margin:.5em 0 2em}"
             "td,th{padding:2px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>Green: the word raised the probability of the next word; "
             "red: it lowered it (integrated gradients, embeddings scaled toward zero). "
             f"Words marked {OOV_MARK} are out of vocabulary and were read as &lt;unk&gt;.</p>"]
    for exp in explanations:
        peak = float(max(abs(v) for v in exp.ig)) if len(exp.ig) else 0.0
        words = "".join(f"<span style='background:{_colour(float(v), peak)}' title='IG {v:.4g}'>"
                        f"{html.escape(_word(exp, i))}</span>" for i, v in enumerate(exp.ig))
        rows = "".join(f"<tr><td>{html.escape(_word(exp, i))}</td><td>{factor * exp.ig[i]:.4f}</td>"
                       f"<td>{factor * exp.gradient[i]:.4f}</td></tr>" for i in range(len(exp.ig)))
        parts.append(f"<h3>{html.escape(headline(exp))}</h3><p class='ctx'>{words}"
                     f"<span class='next'>{html.escape(exp.target_word)}</span></p>"
                     f"<table><tr><th>Sentence</th><th>{ig_head}</th><th>{grad_head}</th></tr>{rows}</table>"
                     f"<p><small>{html.escape(completeness_line(exp))}</small></p>")
    parts.append("</body></html>\n")
    return "".join(parts)
