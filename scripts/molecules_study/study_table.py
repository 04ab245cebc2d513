"""The study's hypothesis table: rows are hypotheses, columns the tasks; written as study.md/csv/json."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from igkit import write_csv, write_json
from igkit.plugins.molecules.tasks import fragments, make_task

TWO = ("fluoride_carbonyl", "alkane_carbonyl", "chloride_carbonyl")
THREE = ("amine_ether_benzene", "fluoride_carbonyl_ether")
TASKS = (*TWO, *THREE, "benzene")


#: the hypothesis table: (hypothesis, setting, model row, column of study.csv)
HYPOTHESES = [
    ("issue's setting", "old W2N2 (= W2N4, 2 dense), IG of the probability, zero baseline",
     "old default (w2n4, 2 dense)", "ig_prob"),
    ("", "same, own share only", "old default (w2n4, 2 dense)", "ig_prob_own"),
    ("architecture name", "W2N2 as Kearnes et al. mean it (pairs ≤ 2 bonds), probability, zero", "W2N2", "ig_prob"),
    ("saturation: score", "W2N2, IG of the logit, zero baseline", "W2N2", "ig"),
    ("", "W2N2, share of test positives with p > 0.99", "W2N2", "saturated_p>0.99"),
    ("baseline", "W2N2, logit, training-mean features", "W2N2", "ig_mean"),
    ("", "W2N2, logit, carbon skeleton (all C, all single bonds)", "W2N2", "ig_carbon"),
    ("", "W2N2, logit, empty molecule (IG over atom presence)", "W2N2", "ig_presence"),
    ("", "W2N2, logit, zero and carbon skeleton averaged", "W2N2", "ig_zero_carbon"),
    ("pair features", "W2N2, logit, zero + carbon, atoms' own share only", "W2N2", "ig_zero_carbon_own"),
    ("aggregation", "W2N2, logit, zero + carbon, own + half of each bond (distance-2 pairs left out)", "W2N2",
     "ig_zero_carbon_bonds"),
    ("shortcuts", "W2N2: positives still called positive with one fragment deleted", "W2N2",
     "still_positive_after_deleting_one_fragment"),
    ("", "same, model trained with counterfactual negatives", "W2N2, counterfactual negatives",
     "still_positive_after_deleting_one_fragment"),
    ("", "counterfactual negatives: IG logit, zero", "W2N2, counterfactual negatives", "ig"),
    ("", "counterfactual negatives: IG logit, zero + carbon", "W2N2, counterfactual negatives", "ig_zero_carbon"),
    ("training negatives", "clean training negatives (make-task default): IG logit, zero",
     "W2N2, no partial negatives", "ig"),
    ("", "clean training negatives: IG logit, zero + carbon (**the default**)", "W2N2, no partial negatives",
     "ig_zero_carbon"),
    ("", "clean training negatives: zero + carbon, own + half of each bond only", "W2N2, no partial negatives",
     "ig_zero_carbon_bonds"),
    ("", "clean training negatives: seeds 1 and 2, zero + carbon",
     "W2N2, no partial negatives, seed 1|W2N2, no partial negatives, seed 2", "ig_zero_carbon"),
    ("", "clean training negatives: 3-seed ensemble, zero + carbon",
     "W2N2, no partial negatives, ensemble of 3 seeds (averaged attributions)", "ig_zero_carbon"),
    ("", "clean training negatives: test ROC-AUC on the task labels (partial negatives in test)",
     "W2N2, no partial negatives", "test_roc_auc"),
    ("", "clean training negatives: positives still positive with one fragment deleted",
     "W2N2, no partial negatives", "still_positive_after_deleting_one_fragment"),
    ("depth / distance", "W1N2, logit, zero / zero + carbon", "W1N2", "ig|ig_zero_carbon"),
    ("", "W3N2, logit, zero / zero + carbon", "W3N2", "ig|ig_zero_carbon"),
    ("", "W2N1, logit, zero / zero + carbon", "W2N1", "ig|ig_zero_carbon"),
    ("", "W2N4 (old), logit, zero / zero + carbon", "old default (w2n4, 2 dense)", "ig|ig_zero_carbon"),
    ("", "W2N∞, logit, zero / zero + carbon", "W2N∞", "ig|ig_zero_carbon"),
    ("", "W2N2 with 1 dense layer, logit, zero / zero + carbon", "W2N2, 1 dense", "ig|ig_zero_carbon"),
    ("training", "weight decay 1e-2, logit, zero / zero + carbon", "W2N2, weight decay 1e-2", "ig|ig_zero_carbon"),
    ("", "full featurization, logit, zero / zero + carbon", "W2N2, full featurization", "ig|ig_zero_carbon"),
    ("", "seeds 1 and 2 alone, logit, zero + carbon", "W2N2 seed 1|W2N2 seed 2", "ig_zero_carbon"),
    ("", "3-seed ensemble, averaged attributions, logit, zero / zero + carbon",
     "W2N2 ensemble of 3 seeds (averaged attributions)", "ig|ig_zero_carbon"),
    ("", "counterfactual negatives, seeds 1 and 2 alone, logit, zero + carbon",
     "W2N2, counterfactual negatives, seed 1|W2N2, counterfactual negatives, seed 2", "ig_zero_carbon"),
    ("", "counterfactual negatives, 3-seed ensemble, logit, zero + carbon",
     "W2N2, counterfactual negatives, ensemble of 3 seeds (averaged attributions)", "ig_zero_carbon"),
    ("methods", "W2N2: saliency / grad × input / smoothgrad (logit)", "W2N2", "saliency|grad_x_input|smoothgrad"),
    ("", "W2N2: occlusion of atoms (logit)", "W2N2", "occlusion"),
    ("model", "W2N2 test ROC-AUC on the task labels", "W2N2", "test_roc_auc"),
]


#: a one-fragment task has no partial negatives: its "clean" model is the plain one
SAME_TASK = {"W2N2, no partial negatives": "W2N2"}


def summary_markdown(rows: list[dict], tasks=TASKS) -> str:
    """The hypothesis table (rows: hypotheses, columns: tasks); ``a / b`` for several columns or models."""
    by = {(r["task"], r["model"]): r for r in rows}
    present = [t for t in tasks if any(r["task"] == t for r in rows)]
    lines = ["| hypothesis | setting | " + " | ".join(present) + " |", "| --- | --- |" + " --- |" * len(present)]
    for hypothesis, setting, models, columns in HYPOTHESES:
        cells = []
        for t in present:
            values = [by.get((t, m), by.get((t, SAME_TASK.get(m)), {}) if len(fragments(make_task(t).rule)) == 1
                             else {}).get(c) for m in models.split("|") for c in columns.split("|")]
            cells.append(" / ".join("–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"
                                    for v in values))
        lines.append(f"| {hypothesis} | {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], out: Path) -> None:
    """``study.md`` (the hypothesis table), ``study.json`` (every row) and ``study.csv`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.md").write_text(summary_markdown(rows))
    write_json(out / "study.json", rows)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("task", "model"), k))
    write_csv(out / "study.csv", columns, ([r.get(c, "") for c in columns] for r in rows))
