"""Attribution methods scored on a known answer: does removing the words a method ranks first
change the next-word prediction? (``igkit text score-methods``)

Every method explains the same predictions through the domain's one path (``igkit.explain``);
each context's words are then ranked by the method's per-word value (highest first) and

* **deletion**: the top-k words are replaced (k = 0 … T) and the probability of the explained
  next word is read again; the curve is p_k / p(full context), its AUC over k/T ∈ [0, 1] is
  small when the method found the words the prediction rests on;
* **insertion**: every word is replaced, then the top-k are put back; the AUC is large when the
  method's first words alone restore the prediction.

Replacements: the zero embedding (IG's and occlusion's baseline) and the ``<unk>`` word (a
replacement no method integrates toward). ``random`` (a seeded random ranking) is the control.
"""
from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

import igkit
from igkit.domain import BadItem, Item, content_digest
from igkit.errors import IGInputError
from igkit.io.records import write_csv, write_json, write_text

from .attribution import next_word_probability
from .contexts import ContextSpec, read_positions
from .explanation import TextExplanation
from .methods import DEFAULT_SCORE_METHODS, unavailable_method
from .vocab import UNK

REPLACEMENTS = ("zero", "unk")
KINDS = ("deletion", "insertion")
#: rankings that know nothing of the model: a seeded random order, and the last word first
CONTROLS = ("random", "recency")
#: metric → (header, which way is better)
METRICS = {
    "deletion_zero": ("deletion (zero)", "lower"),
    "insertion_zero": ("insertion (zero)", "higher"),
    "deletion_unk": ("deletion (<unk>)", "lower"),
    "insertion_unk": ("insertion (<unk>)", "higher"),
    "top1_drop": ("top-1 drop (zero)", "higher"),
    "top1_drop_unk": ("top-1 drop (<unk>)", "higher"),
    "ms_per_context": ("ms/context", "lower"),
}
#: what the columns mean, under every table
LEGEND = ("deletion / insertion: AUC of p_k / p(full context) over the fraction of words replaced "
          "(deletion: the top-k words replaced; insertion: only the top-k kept), with the zero "
          "embedding (IG's and occlusion's baseline) or the <unk> word as the replacement; "
          "top-1 drop: share of the probability lost when the top word alone is replaced; "
          "ms/context: the method's time per context on this machine (non-IG methods are "
          "timed with a one-point IG beside them); controls: random (a seeded random ranking) and recency "
          "(the last word first, then the one before it, ...). "
          "Values above 1 mean the probability rose.")
#: points of the mean curves (each context's curve resampled over the fraction of words replaced)
CURVE_POINTS = 21
#: how the non-IG methods are timed: the runner always integrates IG too, here on one point
ONE_POINT = {"steps": 1}


@dataclass
class Scored:
    """What :func:`score_methods` measured."""

    methods: list[str]
    metrics: dict[str, dict[str, float]]            # method → metric → mean over contexts
    errors: dict[str, dict[str, float]]             # method → metric → standard error of the mean
    curves: dict[str, dict[str, list[float]]]       # method → "deletion_zero" … → mean curve (CURVE_POINTS)
    contexts: list[dict[str, Any]]                  # one row per (context, method)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    positions: int = 0
    words: int = 0
    #: method → metric → (mean of the per-context difference to the first method, its standard error,
    #: share of contexts where the method is strictly better): paired, so context-to-context spread cancels
    paired: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return self.methods[0]


def ptb_items(path: Path, positions: int, window: int, seed: int, target: str = "predicted") -> list[Item]:
    """``positions`` random positions of a tokenised corpus file (seeded), each with its ``window``
    words before it; ``target`` "actual" explains the word that follows, "predicted" the model's
    top word."""
    every = list(read_positions(path, window))
    if positions > len(every):
        raise IGInputError(f"{path} has {len(every)} positions with {window} words before them; "
                           f"--positions {positions} asks for more")
    chosen = sorted(random.Random(seed).sample(range(len(every)), positions))
    items = []
    for index in chosen:
        item = every[index]
        spec = item.value
        if target == "predicted":
            spec = ContextSpec(spec.text, None, spec.tokens)
            item = Item(item.source, spec, item.name, content_digest("tokens", *spec.tokens, "predicted"))
        items.append(item)
    return items


def check_score_methods(methods: Sequence[str]) -> list[str]:
    """The methods to score, in order, without repeats; unknown or unavailable ones are errors."""
    names = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    if not names:
        raise IGInputError("give at least one method to score, e.g. --methods integrated_gradients,occlusion")
    for name in names:
        if name in CONTROLS:
            raise IGInputError(f"{name!r} is a control every table has; list only attribution methods")
        if unavailable_method(name):
            raise IGInputError(unavailable_method(name))
        igkit.get_method(name)
    return names


def score_methods(lm: Any, items: Iterable[Item | BadItem], methods: Sequence[str] = DEFAULT_SCORE_METHODS, *,
                  integration: dict[str, Any] | None = None, seed: int = 0,
                  say: Callable[[str], None] = lambda line: None, units: str = "words") -> Scored:
    """Explain ``items`` with every method (through ``igkit.explain``) and score the word rankings.

    For a transformers causal LM, ``units`` ("words" or "tokens") are what is ranked and replaced
    (:mod:`igkit.plugins.text.hf_scoring`)."""
    from .hf_model import as_causal_lm

    causal = as_causal_lm(lm)
    if causal is not None:
        lm = causal
    methods = check_score_methods(methods)
    items = list(items)
    values: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, dict[str, float]] = {}
    first: dict[str, TextExplanation] = {}
    skipped: dict[str, str] = {}
    for method in methods:
        start = time.perf_counter()
        if method == "integrated_gradients":
            found = igkit.explain("text", items, model=lm, integration=integration)
        else:
            with warnings.catch_warnings():  # the one-point IG beside the method does not add up: by design
                warnings.filterwarnings("ignore", message="completeness error above")
                found = igkit.explain("text", items, model=lm, methods=[method], integration=ONE_POINT)
        skipped.update({s.source: s.reason for s in found.skipped})
        values[method] = {}
        seconds[method] = {}
        for exp in found:
            first.setdefault(exp.source, exp)
            if causal is not None:
                values[method][exp.source] = (exp.token_attributions if method == "integrated_gradients"
                                              else exp.method_values[method])
            else:
                values[method][exp.source] = exp.ig if method == "integrated_gradients" else exp.method_values[method]
            seconds[method][exp.source] = exp.attribution.seconds
        say(f"{method}: {len(found)} context(s) in {time.perf_counter() - start:.1f} s")
    sources = [s for s in dict.fromkeys(i.source for i in items if isinstance(i, Item))
               if s in first and all(s in values[m] for m in methods)]
    if not sources:
        reasons = "; ".join(f"{s}: {r}" for s, r in list(skipped.items())[:3])
        raise IGInputError(f"no context could be explained by every method ({reasons or 'no contexts given'})")
    rng = np.random.default_rng(seed)
    net = lm.model
    unk = None if causal is not None else lm.vocab.index[UNK]
    scored = [*methods, *CONTROLS]
    rows: list[dict[str, Any]] = []
    per_method: dict[str, list[dict[str, Any]]] = {m: [] for m in scored}
    was_training = net.training
    net.eval()
    try:
        for source in sources:
            exp = first[source]
            if causal is not None:
                from .hf_scoring import causal_curves, unit_values

                per_unit = {m: unit_values(exp, values[m][source], units)[0] for m in methods}
                labels, target_word = unit_values(exp, values[methods[0]][source], units)[1], exp.label
            else:
                per_unit, labels, target_word = {m: values[m][source] for m in methods}, exp.words, exp.target_word
            rankings = {m: _ranking(per_unit[m]) for m in methods}
            rankings["random"] = rng.permutation(len(labels))
            rankings["recency"] = np.arange(len(labels))[::-1]
            curves = (causal_curves(exp, rankings, units) if causal is not None else
                      context_curves(net, exp.context.ids, int(exp.attribution.prepared.target), rankings, unk))
            for m in scored:
                row = {"source": source, "method": m, "target": target_word,
                       "probability": curves["p_full"], "top_word": labels[int(rankings[m][0])],
                       **{name: _auc(curve) for name, curve in curves[m].items()},
                       "top1_drop": 1.0 - curves[m]["deletion_zero"][1],
                       "top1_drop_unk": 1.0 - curves[m]["deletion_unk"][1],
                       "ms_per_context": 1000 * seconds[m][source] if m in seconds else 0.0}
                rows.append(row)
                per_method[m].append({**row, "curves": curves[m]})
    finally:
        net.train(was_training)
    metrics = {m: {k: float(np.mean([r[k] for r in per_method[m]])) for k in METRICS} for m in scored}
    errors = {m: {k: float(np.std([r[k] for r in per_method[m]], ddof=1) / np.sqrt(len(per_method[m])))
                  if len(per_method[m]) > 1 else 0.0 for k in METRICS} for m in scored}
    mean_curves = {m: {c: np.mean([_on_grid(r["curves"][c]) for r in per_method[m]], axis=0).tolist()
                       for c in per_method[m][0]["curves"]}
                   for m in scored}
    return Scored(scored, metrics, errors, mean_curves, rows, sorted(skipped.items()), len(sources),
                  len(first[sources[0]].context.words if causal is not None else first[sources[0]].words),
                  _paired(per_method, scored))


def _paired(per_method: dict[str, list[dict[str, Any]]], methods: list[str]
            ) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Each method against the first, context by context (same contexts, same order)."""
    first = per_method[methods[0]]
    out = {}
    for m in methods[1:]:
        out[m] = {}
        for k, (_, better) in METRICS.items():
            if k == "ms_per_context":
                continue
            d = np.array([r[k] - f[k] for r, f in zip(per_method[m], first)])
            wins = d < 0 if better == "lower" else d > 0
            sem = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
            out[m][k] = (float(d.mean()), sem, float(wins.mean()))
    return out


def _on_grid(curve: Sequence[float]) -> np.ndarray:
    """A curve over k/T resampled at :data:`CURVE_POINTS` fractions (contexts differ in length)."""
    ys = np.asarray(curve, dtype=float)
    return np.interp(np.linspace(0, 1, CURVE_POINTS), np.linspace(0, 1, len(ys)), ys) if len(ys) > 1 \
        else np.full(CURVE_POINTS, ys[0])


def _ranking(values: np.ndarray) -> np.ndarray:
    """Positions, highest value first (ties: the earlier word first)."""
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")


def _auc(curve: Sequence[float]) -> float:
    ys = np.asarray(curve, dtype=float)
    return float(np.trapezoid(ys, dx=1.0 / (len(ys) - 1))) if len(ys) > 1 else float(ys[0])


@torch.no_grad()
def context_curves(net: Any, ids: Sequence[int], target: int, rankings: dict[str, np.ndarray], unk: int
                   ) -> dict[str, Any]:
    """Per method, the four curves p_k / p(full) over k = 0 … T (deletion/insertion × zero/<unk>),
    from one batch of forward passes; ``"p_full"`` is the prediction's own probability."""
    forward = next_word_probability(net, net.embedding, output_layer=net.decoder)
    device = next(net.parameters()).device
    ids_t = torch.tensor([list(ids)], dtype=torch.long, device=device)
    x = net.embedding(ids_t)[0]                                              # [T, D]
    T = x.shape[0]
    fills = {"zero": torch.zeros_like(x[0]), "unk": net.embedding.weight[unk]}
    methods = list(rankings)
    # kept[m, k, t]: word t is among method m's top k
    order = torch.tensor(np.stack([rankings[m] for m in methods]), device=device)           # [M, T]
    rank_of = torch.empty_like(order)
    rank_of.scatter_(1, order, torch.arange(T, device=device).expand(len(methods), T))
    top_k = rank_of.unsqueeze(1) < torch.arange(T + 1, device=device).view(1, -1, 1)         # [M, T+1, T]
    points = []
    for fill in fills.values():
        for kind in KINDS:
            keep = ~top_k if kind == "deletion" else top_k
            points.append(torch.where(keep.unsqueeze(-1), x, fill))                            # [M, T+1, T, D]
    batch = torch.stack(points).reshape(-1, T, x.shape[1])
    probs = forward(batch, ids_t.expand(batch.shape[0], T))[:, target].double()
    full = float(forward(x.unsqueeze(0), ids_t)[0, target])
    probs = (probs / full).reshape(len(fills), len(KINDS), len(methods), T + 1).cpu().numpy()
    out: dict[str, Any] = {"p_full": full}
    for j, m in enumerate(methods):
        out[m] = {f"{kind}_{fill}": probs[f, k, j].tolist()
                  for f, fill in enumerate(fills) for k, kind in enumerate(KINDS)}
    return out


# --- files -------------------------------------------------------------------------------------
def _cell(scored: Scored, method: str, metric: str) -> str:
    value = scored.metrics[method][metric]
    if metric == "ms_per_context":
        return "–" if method in CONTROLS else f"{value:.1f}"
    return f"{value:.3f} ± {scored.errors[method][metric]:.3f}"


def table_lines(scored: Scored) -> list[str]:
    """The methods × metrics table as aligned text (mean ± standard error over contexts)."""
    heads = ["method", *(f"{h} {'↓' if d == 'lower' else '↑'}" for h, d in METRICS.values())]
    rows = [[m, *(_cell(scored, m, k) for k in METRICS)] for m in scored.methods]
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    fmt = lambda r: "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [fmt(heads), *(fmt(r) for r in rows)]


def markdown(scored: Scored, command: str | None = None) -> str:
    heads = ["method", *(f"{h} {'↓' if d == 'lower' else '↑'}".replace("<unk>", "`<unk>`")
                         for h, d in METRICS.values())]
    lines = [f"Words ranked by each method on {scored.positions} predictions (mean ± standard error "
             f"over contexts).", "",
             "| " + " | ".join(heads) + " |", "|---|" + "---:|" * len(METRICS)]
    for m in scored.methods:
        label = f"{m} (control)" if m in CONTROLS else m
        lines.append("| " + " | ".join([label, *(_cell(scored, m, k) for k in METRICS)]) + " |")
    lines += ["", LEGEND.replace("<unk>", "`<unk>`")]
    if scored.paired:
        keys = [k for k in METRICS if k != "ms_per_context"]
        lines += ["", f"Paired with {scored.reference}, context by context: mean difference ± standard error "
                      f"(share of contexts where the method is strictly better).", "",
                  "| method | " + " | ".join(f"{METRICS[k][0]} {'↓' if METRICS[k][1] == 'lower' else '↑'}"
                                           .replace("<unk>", "`<unk>`") for k in keys) + " |", "|---|" + "---:|" * len(keys)]
        for m, by_metric in scored.paired.items():
            lines.append(f"| {m} | " + " | ".join(f"{by_metric[k][0]:+.3f} ± {by_metric[k][1]:.3f} "
                                                  f"({by_metric[k][2]:.0%})" for k in keys) + " |")
    if command:
        lines += ["", f"Command: `{command}`"]
    if scored.skipped:
        lines += ["", f"{len(scored.skipped)} context(s) skipped: "
                      + "; ".join(f"{s}: {r}" for s, r in scored.skipped[:5])]
    return "\n".join(lines) + "\n"


def write_scores(scored: Scored, out: Path, *, command: str | None = None, settings: dict[str, Any] | None = None
                 ) -> list[Path]:
    """``scores.csv``, ``scores.json``, ``scores.md``, ``contexts.csv`` and ``curves.png`` in ``out``."""
    from .figures import curves_figure

    out.mkdir(parents=True, exist_ok=True)
    metric_names = list(METRICS)
    write_csv(out / "scores.csv", ["method", "contexts", *metric_names, *(f"{k}_sem" for k in metric_names)],
              ([m, scored.positions, *(scored.metrics[m][k] for k in metric_names),
                *(scored.errors[m][k] for k in metric_names)] for m in scored.methods))
    write_csv(out / "contexts.csv", ["source", "method", "target", "probability", "top_word", *metric_names],
              ([r[k] for k in ["source", "method", "target", "probability", "top_word", *metric_names]]
               for r in scored.contexts))
    write_json(out / "scores.json", {
        "contexts": scored.positions, "words_per_context": scored.words, "settings": settings or {},
        "command": command, "metrics": {k: {"description": h, "better": d} for k, (h, d) in METRICS.items()},
        "controls": list(CONTROLS), "scores": scored.metrics, "standard_errors": scored.errors,
        "curves": scored.curves, "paired_with": scored.reference,
        "paired": {m: {k: {"mean_difference": v[0], "standard_error": v[1], "better_share": v[2]}
                       for k, v in by.items()} for m, by in scored.paired.items()}, "skipped": [{"source": s, "reason": r} for s, r in scored.skipped]})
    write_text(out / "scores.md", markdown(scored, command))
    paths = [out / "scores.csv", out / "scores.json", out / "scores.md", out / "contexts.csv"]
    if scored.curves:
        curves_figure(scored.curves, scored.metrics, out / "curves.png", positions=scored.positions)
        paths.append(out / "curves.png")
    return paths

