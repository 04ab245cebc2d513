"""Do the attributions point at the right atoms? Scoring against tasks with a known answer.

Rule tasks (Sanchez-Lengeling et al. 2020): for each test molecule the rule calls
positive, the ROC-AUC of its atom attributions at separating the rule's atoms
from the others; averaged over molecules, for IG and for gradient × input.
Crippen logP: Kendall's tau between atom attributions and the Crippen atom
contributions, per molecule, averaged.

Atom scores are the atoms' own attributions plus half of each of their pairs
(:func:`~igkit.plugins.molecules.attribution.with_pairs`): with simple features a
ring is visible only in its pairs. The atoms' own share is scored as well
(``*_own`` columns) to show how much of the answer lives in the pairs.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from igkit.evaluation import attribution_auc, kendall_tau

from .attribution import explain_graphs, with_pairs
from .checkpoint import MoleculeModel, predict
from .featurize import MolGraph
from .readers import MoleculeRecord, Problem
from .tasks import Task

COMPARED = "grad_x_input"
METHODS = ("integrated_gradients", COMPARED, "integrated_gradients_own", f"{COMPARED}_own")


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
                  **ig_options: Any) -> Evaluation:
    """Predict every molecule, attribute those with a defined truth, and compare IG with gradient × input."""
    labels = np.array([task.label(r.mol) for r in records])
    predictions = predict(model, list(graphs), score="logit")[:, 0].numpy()
    if task.task_type == "classification":
        model_quality = {"roc_auc": attribution_auc(predictions, labels > 0.5)}
        chosen = [k for k in range(len(records)) if labels[k] > 0.5]  # negatives have no true atoms
    else:
        model_quality = {"rmse": float(np.sqrt(np.mean((predictions - labels) ** 2)))}
        chosen = list(range(len(records)))
    explanations, problems = explain_graphs(model, [records[k] for k in chosen], [graphs[k] for k in chosen],
                                            score=score, methods=[COMPARED], show_progress=show_progress,
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
    values = {name: np.array([r[name] for r in rows], dtype=float) for name in METHODS}
    scored = ~np.isnan(values["integrated_gradients"]) & ~np.isnan(values[COMPARED])
    ig, gx = values["integrated_gradients"][scored], values[COMPARED][scored]
    summary = {
        "task": task.name, "task_type": task.task_type, "metric": metric_name, "score": score,
        "molecules": len(records), "attributed": len(explanations), "scored": int(scored.sum()),
        "model": model.name, "model_quality_on_task_labels": model_quality,
        **{name: _stats(v[scored & ~np.isnan(v)]) for name, v in values.items()},
        "ig_better_fraction": float(np.mean(ig > gx)) if scored.any() else float("nan"),
        "worst_completeness_error": max((r["completeness_error"] for r in rows), default=float("nan")),
    }
    return Evaluation(summary, rows, problems)


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
    summary_path.write_text(json.dumps(document, indent=2) + "\n")
    csv_path = out_dir / "per_molecule.csv"
    with csv_path.open("w", newline="") as fh:
        columns = ["molecule", "smiles", "atoms", "true_atoms", "score", "completeness_error", *METHODS]
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(evaluation.rows)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(-1 if s["metric"] == "kendall_tau" else 0, 1, 41)
    for name, colour in (("integrated_gradients", "#c0392b"), (COMPARED, "#2c7fb8")):
        values = np.array([r[name] for r in evaluation.rows], dtype=float)
        values = values[~np.isnan(values)]
        ax.hist(values, bins=bins, alpha=0.6, color=colour,
                label=f"{name} (mean {s[name]['mean']:.3f})")
    ax.set_xlabel(f"per-molecule {s['metric']} vs the true atoms")
    ax.set_ylabel("molecules")
    ax.set_title(f"{s['task']}: {s['scored']} molecules", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    plot_path = out_dir / "evaluation.png"
    fig.savefig(plot_path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [summary_path, csv_path, plot_path]
