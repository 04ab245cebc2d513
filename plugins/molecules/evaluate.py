"""Do the attributions point at the right atoms? Scoring against tasks with a known answer.

Rule tasks (Sanchez-Lengeling et al. 2020): for each test molecule the rule calls
positive, the ROC-AUC of its atom attributions at separating the rule's atoms
from the others; averaged over molecules, for IG and for gradient × input.
Crippen logP: Kendall's tau between atom attributions and the Crippen atom
contributions, per molecule, averaged.

Atom scores are the atoms' own attributions plus half of each of their pairs
(:func:`~igkit.plugins.molecules.explanation.with_pairs`): with simple features a
ring is visible only in its pairs. The atoms' own share is scored as well
(``*_own`` columns) to show how much of the answer lives in the pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from igkit.attribution.evaluation import attribution_auc, kendall_tau
from igkit.io.records import write_csv, write_json

from .api import explain_graphs
from .explanation import with_pairs
from .render import new_figure
from .checkpoint import MoleculeModel
from .model_kinds import is_graph_model, predict_any
from .featurize import MolGraph
from .readers import MoleculeRecord, Problem
from .tasks import Task

COMPARED = "grad_x_input"
METHODS = ("integrated_gradients", COMPARED, "integrated_gradients_own", f"{COMPARED}_own")
#: igkit's default attribution for molecules (score, baseline and aggregation of weave.py)
DEFAULT = "integrated_gradients_default"


@dataclass
class Evaluation:
    """Per-molecule agreement with the truth, and the summary over the test set."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    problems: list[Problem]


def _agreement(task: Task) -> tuple[str, Any]:
    if task.task_type == "regression":
        return "kendall_tau", kendall_tau
    return "atom_roc_auc", attribution_auc


def evaluate_task(model: MoleculeModel, task: Task, records: Sequence[MoleculeRecord],
                  graphs: Sequence[MolGraph], *, score: str = "probability", show_progress: bool = False,
                  baseline: str | None = None, task_name: str | int | None = None, **ig_options: Any) -> Evaluation:
    """Predict every molecule, attribute those with a defined truth, and compare IG with gradient × input.

    Rule tasks are also scored with igkit's default attribution for molecules
    (``integrated_gradients_default``: IG of the logit from the zero and carbon-skeleton
    baselines averaged, see :mod:`.weave`; ``baseline`` picks another) and, for AND
    rules, how often each fragment's atoms score above the atoms outside the rule
    (``fragment_found_rate``, one value per fragment). That default is the weave network's: a
    chemprop or PyTorch Geometric model is scored by IG (zero baseline) and gradient × input.
    ``task_name`` picks the model's output (default: its first task).
    """
    labels = np.array([task.label(r.mol) for r in records])
    t = model.task_index(task_name)
    predictions = predict_any(model, list(graphs), score="logit")[:, t].numpy()
    if task.task_type == "classification":
        model_quality = {"roc_auc": attribution_auc(predictions, labels > 0.5)}
        chosen = [k for k in range(len(records)) if labels[k] > 0.5]  # negatives have no true atoms
    else:
        model_quality = {"rmse": float(np.sqrt(np.mean((predictions - labels) ** 2)))}
        chosen = list(range(len(records)))
    explanations, problems = explain_graphs(model, [records[k] for k in chosen], [graphs[k] for k in chosen],
                                            task=task_name, score=score, baseline="zero", methods=[COMPARED],
                                            show_progress=show_progress,
                                            **ig_options)
    metric_name, metric = _agreement(task)
    rows = []
    for expl in explanations:
        truth = task.truth(expl.graph.mol)
        g_atoms, g_pairs = expl.extra[COMPARED]
        rows.append({"molecule": expl.id, "smiles": expl.smiles, "atoms": expl.graph.n_atoms,
                     "true_atoms": int(truth.sum()) if truth.dtype == bool else "",
                     "score": expl.score_input, "completeness_error": expl.completeness_error,
                     "integrated_gradients": metric(expl.atom_totals, truth),
                     COMPARED: metric(with_pairs(expl.graph, g_atoms, g_pairs), truth),
                     "integrated_gradients_own": metric(expl.atom_attributions, truth),
                     f"{COMPARED}_own": metric(g_atoms, truth)})
    methods = list(METHODS)
    found_rates: list[float] = []
    if task.task_type == "classification" and explanations and not is_graph_model(model):
        from .multifragment import default_attributions, fragments_found
        from .defaults import DEFAULT_BASELINE

        used = baseline or DEFAULT_BASELINE
        defaults = default_attributions(model, [e.graph for e in explanations], baseline=used)
        found = []
        for row, expl, (own, pairs) in zip(rows, explanations, defaults):
            truth = task.truth(expl.graph.mol)
            totals = with_pairs(expl.graph, own, pairs)
            row[DEFAULT] = metric(totals, truth)
            row[f"{DEFAULT}_own"] = metric(own, truth)
            found.append(fragments_found(task, expl.graph.mol, totals))
        found_rates = np.mean(np.array(found, dtype=float), axis=0).tolist()
        methods += [DEFAULT, f"{DEFAULT}_own"]
    values = {name: np.array([r.get(name, np.nan) for r in rows], dtype=float) for name in methods}
    scored = ~np.isnan(values["integrated_gradients"]) & ~np.isnan(values[COMPARED])
    ig, gx = values["integrated_gradients"][scored], values[COMPARED][scored]
    summary = {
        "task": task.name, "task_type": task.task_type, "metric": metric_name, "score": score,
        "molecules": len(records), "attributed": len(explanations), "scored": int(scored.sum()),
        "model": model.name, "model_quality_on_task_labels": model_quality,
        **{name: _stats(v[scored & ~np.isnan(v)]) for name, v in values.items()},
        "ig_better_fraction": float(np.mean(ig > gx)) if scored.any() else float("nan"),
        **({"default_attribution": {"score": "logit", "baseline": baseline or _default_baseline(),
                                    "aggregation": "own + half of each pair"},
            "fragment_found_rate": found_rates} if found_rates else {}),
        "worst_completeness_error": max((r["completeness_error"] for r in rows), default=float("nan")),
    }
    return Evaluation(summary, rows, problems)


def _default_baseline() -> str:
    from .defaults import DEFAULT_BASELINE

    return DEFAULT_BASELINE


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"mean": float("nan"), "median": float("nan")}
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "q25": float(np.quantile(values, 0.25)), "q75": float(np.quantile(values, 0.75))}


def write_evaluation(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """``evaluation.json``, ``per_molecule.csv`` and a histogram of the per-molecule scores."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s = evaluation.summary
    summary_path = out_dir / "evaluation.json"
    document = {**s, "skipped": [{"row": p.row, "molecule": p.id, "reason": p.reason}
                                 for p in evaluation.problems]}
    write_json(summary_path, document)
    csv_path = out_dir / "per_molecule.csv"
    extra = [DEFAULT, f"{DEFAULT}_own"] if any(DEFAULT in r for r in evaluation.rows) else []
    columns = ["molecule", "smiles", "atoms", "true_atoms", "score", "completeness_error", *METHODS, *extra]
    write_csv(csv_path, columns, ([r.get(c, "") for c in columns] for r in evaluation.rows))
    fig = new_figure((6, 3.6))
    ax = fig.subplots()
    bins = np.linspace(-1 if s["metric"] == "kendall_tau" else 0, 1, 41)
    shown = [("integrated_gradients", "#c0392b"), (COMPARED, "#2c7fb8")]
    if DEFAULT in s:
        shown.append((DEFAULT, "#27ae60"))
    for name, colour in shown:
        values = np.array([r.get(name, np.nan) for r in evaluation.rows], dtype=float)
        values = values[~np.isnan(values)]
        ax.hist(values, bins=bins, alpha=0.6, color=colour,
                label=f"{name} (mean {s[name]['mean']:.3f})")
    ax.set_xlabel(f"per-molecule {s['metric']} vs the true atoms")
    ax.set_ylabel("molecules")
    ax.set_title(f"{s['task']}: {s['scored']} molecules", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    plot_path = out_dir / "evaluation.png"
    fig.savefig(plot_path, dpi=110, bbox_inches="tight")
    return [summary_path, csv_path, plot_path]
