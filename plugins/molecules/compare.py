"""Attribution methods scored on molecules whose answer is known (``igkit molecules score-methods``).

Every method runs through the explain command's runner (:func:`.api.explain_graphs`:
the same preparation, padding, method options and integration). For a rule task
(SMARTS, one or several fragments joined by AND), each test molecule the rule calls
positive is scored per method by the ROC-AUC of its atom values at separating the
rule's atoms from the others (Sanchez-Lengeling et al. 2020), averaged over molecules;
also how often the method's top atom is a rule atom and, for AND rules, how often
every fragment's atoms score above the atoms outside the rule. For Crippen logP
(regression) the score is Kendall's tau between the atom values and the Wildman–Crippen
atom contributions. Both views of an atom are scored: ``with_pairs`` (its own features
plus half of each of its pairs, what the pictures show) and ``own`` (its own features).
Grad-CAM has atom values only, so its two views coincide.

Time per molecule is measured per method on the first molecules only (the runner
computes all methods of a group together), by the same calls the runner makes, one
molecule at a time, as CPU seconds of this process (on a shared machine the wall
clock measures the neighbours too; run it with one torch thread, ``--threads 1``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from igkit import attribute, integrated_gradients
from igkit.attribution.evaluation import attribution_auc, kendall_tau
from igkit.options import Integration
from igkit.io.records import write_csv, write_json, write_text

from .api import explain_graphs
from .attribution import Featurized
from .explanation import MoleculeExplanation
from .checkpoint import MoleculeModel
from .model_kinds import predict_any
from .domain import COMPARED_METHODS
from .featurize import MolGraph
from .readers import MoleculeInput, MoleculeRecord, Problem
from .tasks import Task

#: the methods scored when none are named (all that apply to weave networks and run in seconds)
DEFAULT_METHODS = COMPARED_METHODS
IG = "integrated_gradients"
#: molecules (the first ones scored) on which each method is timed separately
TIMED_MOLECULES = 20
#: molecules on the example sheet (examples.png)
EXAMPLE_MOLECULES = 4


@dataclass
class MethodScores:
    """The table (one row per method), the per-molecule values, and what was scored."""

    summary: dict[str, Any]
    table: list[dict[str, Any]]
    per_molecule: list[dict[str, Any]]
    explanations: list[MoleculeExplanation]
    problems: list[Problem]


def atom_values(expl: MoleculeExplanation, method: str) -> tuple[np.ndarray, np.ndarray]:
    """``(own, with_pairs)`` atom values of one method for one molecule."""
    if method == IG:
        return expl.atom_attributions, expl.atom_totals
    return expl.extra[method][0], expl.extra_totals[method]


def score_methods(model: MoleculeModel, task: Task, records: Sequence[MoleculeRecord],
                  graphs: Sequence[MolGraph], methods: Sequence[str] = DEFAULT_METHODS, *,
                  limit: int | None = None, score: str = "probability", integration: Integration | None = None,
                  timed: int = TIMED_MOLECULES, show_progress: bool = False,
                  task_name: str | int | None = None) -> MethodScores:
    """Attribute the molecules with a defined answer (rule positives; every molecule for Crippen) with
    integrated gradients and ``methods``, and score each method against the known atoms."""
    methods = [m for m in dict.fromkeys(methods) if m != IG]
    regression = task.task_type == "regression"
    labels = np.array([task.label(r.mol) for r in records])
    predictions = predict_any(model, list(graphs), score="logit")[:, model.task_index(task_name)].numpy() \
        if records else np.zeros(0)
    if regression:
        quality = {"rmse": float(np.sqrt(np.mean((predictions - labels) ** 2)))} if records else {}
    else:
        quality = {"roc_auc": attribution_auc(predictions, labels > 0.5)}
    chosen = []
    for k, rec in enumerate(records):
        truth = task.truth(rec.mol)
        if regression or (truth.any() and not truth.all()):   # AUROC needs rule atoms and other atoms
            chosen.append(k)
    chosen = chosen[:limit] if limit else chosen
    explanations, problems = explain_graphs(model, [records[k] for k in chosen], [graphs[k] for k in chosen],
                                            task=task_name, score=score, baseline="zero", methods=methods,
                                            integration=integration,
                                            show_progress=show_progress)
    names = [IG, *methods]
    metric = kendall_tau if regression else attribution_auc
    metric_name = "kendall_tau" if regression else "atom_auroc"
    per_molecule = []
    for expl in explanations:
        truth = task.truth(expl.graph.mol)
        row: dict[str, Any] = {"molecule": expl.id, "smiles": expl.smiles, "atoms": expl.graph.n_atoms,
                               "score": expl.score_input}
        for name in names:
            own, total = atom_values(expl, name)
            row[f"{name}_own"] = metric(own, truth)
            row[f"{name}_with_pairs"] = metric(total, truth)
            if not regression:
                row[f"{name}_top_atom"] = float(truth[int(np.argmax(total))])
                row[f"{name}_fragments"] = _all_fragments_found(task, expl.graph.mol, total)
        per_molecule.append(row)
    seconds = time_methods(model, [graphs[k] for k in chosen[:timed]], names, score=score,
                           integration=integration, task_name=task_name)
    table = []
    for name in names:
        entry: dict[str, Any] = {"method": name}
        for view in ("with_pairs", "own"):
            values = np.array([r[f"{name}_{view}"] for r in per_molecule], dtype=float)
            values = values[np.isfinite(values)]
            entry[f"{metric_name}_{view}"] = float(values.mean()) if values.size else float("nan")
            entry[f"{metric_name}_{view}_median"] = float(np.median(values)) if values.size else float("nan")
        if not regression:
            for key in ("top_atom", "fragments"):
                values = np.array([r[f"{name}_{key}"] for r in per_molecule], dtype=float)
                entry[f"{key}_rate"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        entry["cpu_seconds_per_molecule"] = seconds.get(name, float("nan"))
        table.append(entry)
    summary = {"task": task.name, "task_type": task.task_type, "metric": metric_name, "score": score,
               "model": model.name, "model_quality_on_task_labels": quality, "molecules": len(records),
               "with_answer": len(chosen), "scored": len(explanations), "methods": names,
               "timed_molecules": min(timed, len(chosen)),
               "worst_completeness_error": max((e.completeness_error for e in explanations), default=float("nan"))}
    return MethodScores(summary, table, per_molecule, explanations, problems)


def _all_fragments_found(task: Task, mol: Any, scores: np.ndarray) -> float:
    """1 when every fragment of the rule has a higher mean score than the atoms outside the rule."""
    from .tasks import fragments

    truth = task.truth(mol)
    rest = scores[~truth].mean() if (~truth).any() else 0.0
    found = [scores[sorted(part.atoms(mol))].mean() > rest for part in fragments(task.rule)
             if part.atoms(mol)]
    return float(all(found)) if found else float("nan")


def time_methods(model: MoleculeModel, graphs: Sequence[MolGraph], names: Sequence[str], *,
                 score: str = "probability", integration: Integration | None = None,
                 task_name: str | int | None = None) -> dict[str, float]:
    """CPU seconds per molecule of each method, one molecule at a time, by the runner's own calls."""
    from .domain import MoleculesDomain

    if not graphs:
        return {}
    domain = MoleculesDomain()
    keywords = (integration or domain.integration).keywords()
    prepared = [domain.prepare(model, Featurized(MoleculeInput("", ""), g), task=task_name, score=score,
                               baseline="zero") for g in graphs]
    seconds = {}
    for name in names:
        start = time.process_time()
        for p in prepared:
            size = keywords.get("batch_size") or p.batch_size
            if name == IG:
                integrated_gradients(p.forward, p.inputs, p.baselines, target=p.target,
                                     forward_args=p.forward_args, **{**keywords, "batch_size": size})
            else:
                attribute(name, p.forward, p.inputs, target=p.target, forward_args=p.forward_args,
                          batch_size=size, **{"baselines": p.baselines, **domain.method_options(name, p)})
        seconds[name] = (time.process_time() - start) / len(prepared)
    return seconds


def columns(summary: dict[str, Any]) -> list[str]:
    m = summary["metric"]
    extra = [] if summary["task_type"] == "regression" else ["top_atom_rate", "fragments_rate"]
    return ["method", f"{m}_with_pairs", f"{m}_own", f"{m}_with_pairs_median", f"{m}_own_median", *extra,
            "cpu_seconds_per_molecule"]


def markdown(scores: MethodScores, command: str = "") -> str:
    """The table as Markdown, best ``with_pairs`` first, with what it measured."""
    s = scores.summary
    cols = columns(s)
    key = f"{s['metric']}_with_pairs"
    rows = sorted(scores.table, key=lambda r: -np.nan_to_num(r[key], nan=-9))
    quality = ", ".join(f"{k} {v:.4f}" for k, v in s["model_quality_on_task_labels"].items())
    lines = [f"Task `{s['task']}` ({s['task_type']}), model `{s['model']}` ({quality} on the task's labels), "
             f"score `{s['score']}`: {s['scored']} molecules scored; worst IG completeness error "
             f"{s['worst_completeness_error']:.2%}; time measured on {s['timed_molecules']} molecules.", ""]
    if command:
        lines += [f"`{command}`", ""]
    lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.3g}" if abs(value) < 0.01 or abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def write_scores(scores: MethodScores, out_dir: Path, *, command: str = "", task: Task | None = None,
                 examples: int = EXAMPLE_MOLECULES) -> list[Path]:
    """``scores.csv``, ``scores.json``, ``scores.md``, ``per_molecule.csv``, ``scores.png`` and
    ``examples.png`` (the first molecules: the true atoms and every method side by side)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s = scores.summary
    cols = columns(s)
    paths = [write_csv(out_dir / "scores.csv", cols, [[r[c] for c in cols] for r in scores.table]),
             write_json(out_dir / "scores.json", {**s, "command": command, "table": scores.table,
                                                  "skipped": [{"molecule": p.id, "reason": p.reason}
                                                              for p in scores.problems]}),
             write_text(out_dir / "scores.md", markdown(scores, command))]
    if scores.per_molecule:
        header = list(scores.per_molecule[0])
        paths.append(write_csv(out_dir / "per_molecule.csv", header,
                               [[r[c] for c in header] for r in scores.per_molecule]))
    paths.append(plot_scores(scores, out_dir / "scores.png"))
    if task is not None and scores.explanations and examples > 0:
        paths.append(example_sheet(scores, task, out_dir / "examples.png", examples))
    return paths


def plot_scores(scores: MethodScores, path: Path) -> Path:
    """Per method: the per-molecule scores as a box (with pairs) beside a box (own features), the
    means marked; methods sorted by the mean with pairs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    s = scores.summary
    m = s["metric"]
    order = sorted(scores.table, key=lambda r: -np.nan_to_num(r[f"{m}_with_pairs"], nan=-9))
    names = [r["method"] for r in order]
    fig = Figure(figsize=(1.1 * len(names) + 2.5, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = {"with_pairs": "#c0392b", "own": "#2c7fb8"}
    for offset, view in ((-0.18, "with_pairs"), (0.18, "own")):
        data = []
        for name in names:
            v = np.array([r[f"{name}_{view}"] for r in scores.per_molecule], dtype=float)
            data.append(v[np.isfinite(v)] if np.isfinite(v).any() else np.array([np.nan]))
        parts = ax.boxplot(data, positions=np.arange(len(names)) + offset, widths=0.32, patch_artist=True,
                           showfliers=False, medianprops={"color": "black"})
        for box in parts["boxes"]:
            box.set_facecolor(colours[view])
            box.set_alpha(0.55)
        ax.plot(np.arange(len(names)) + offset, [np.nanmean(d) if np.isfinite(d).any() else np.nan for d in data],
                "D", color="black", markersize=4, linestyle="none")
    if m == "atom_auroc":
        ax.axhline(0.5, color="#777777", linestyle=":", linewidth=1)
    else:
        ax.axhline(0.0, color="#777777", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(f"per-molecule {'atom ROC-AUC' if m == 'atom_auroc' else 'Kendall tau'}")
    ax.set_title(f"{s['task']}: {s['scored']} molecules, model {s['model']}, score {s['score']}", fontsize=9)
    handles = [Patch(facecolor=colours["with_pairs"], alpha=0.55, label="atom + ½ of its pairs"),
               Patch(facecolor=colours["own"], alpha=0.55, label="atom's own features"),
               ax.plot([], [], "D", color="black", markersize=4, linestyle="none", label="mean")[0],
               ax.plot([], [], ":", color="#777777", label="chance" if m == "atom_auroc" else "no agreement")[0]]
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")
    fig.savefig(path, dpi=110)
    return path


def example_sheet(scores: MethodScores, task: Task, path: Path, count: int = EXAMPLE_MOLECULES) -> Path:
    """The first ``count`` scored molecules × (the known answer, then every method)."""
    from .outputs import method_title
    from .render import method_sheet

    shown = scores.explanations[:count]
    names = scores.summary["methods"]
    rows, labels = [], []
    for expl in shown:
        truth = task.truth(expl.graph.mol).astype(float)
        rows.append([truth, *(atom_values(expl, name)[1] for name in names)])
        labels.append(f"{expl.id[:36]} ({expl.score_input:.3g})")
    answer = ("truth: Crippen atom contributions" if task.task_type == "regression"
              else "truth: the rule's atoms (red = 1)")
    return method_sheet([e.graph.mol for e in shown], rows, [answer, *(method_title(n) for n in names)], labels,
                        path, f"{task.name}: the known answer and each method, first {len(shown)} scored molecules "
                        f"(model score in brackets)",
                        "one colour scale per column, shared by its molecules; columns differ in units")


def print_table(scores: MethodScores) -> None:
    s = scores.summary
    cols = columns(s)
    widths = [max(len(c), 8) for c in cols]
    widths[0] = max(len(r["method"]) for r in scores.table + [{"method": "method"}])
    print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    key = f"{s['metric']}_with_pairs"
    for r in sorted(scores.table, key=lambda r: -np.nan_to_num(r[key], nan=-9)):
        print("  ".join(_fmt(r[c]).rjust(w) if i else _fmt(r[c]).ljust(w)
                        for i, (c, w) in enumerate(zip(cols, widths))))


__all__ = ["DEFAULT_METHODS", "MethodScores", "score_methods", "write_scores", "print_table", "markdown"]
