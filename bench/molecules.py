"""Molecule cases: the weave model on the benzene test split (cases 3 and 4).

Case 4 is the screening use: IG with 50 steps for many molecules. igkit goes
through the plugin's ``explain_graphs`` (molecules of similar size share calls,
their path points share passes); Captum attributes one molecule at a time.
"""
from __future__ import annotations

from csv import DictReader
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients

from igkit.plugins.molecules.api import explain_graphs, featurize_records
from igkit.plugins.molecules.batching import pack
from igkit.plugins.molecules.checkpoint import MoleculeModel, predict
from igkit.plugins.molecules.featurize import MolGraph
from igkit.plugins.molecules.readers import MoleculeRecord, records_from_smiles
from igkit.plugins.molecules.weave import score_function

from .convergence import Problem, Workload
from .measure import milliseconds_per_path_point, sandwiched
from .report import Row
from .throughput import throughput_row

TASK = 0


def test_molecules(csv: Path, model: MoleculeModel, limit: int | None
                   ) -> tuple[list[MoleculeRecord], list[MolGraph]]:
    """Featurized molecules of the test split; ``limit`` of them, evenly spread over the file.

    Rows are picked before RDKit parses them: parsing all 12,000 would cost more
    than a quick run's attributions.
    """
    with csv.open(newline="") as fh:
        rows = [r for r in DictReader(fh) if r["split"].strip() == "test"]
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    records, _ = records_from_smiles([r["smiles"] for r in rows], [r["mol_id"] for r in rows])
    kept, graphs, _ = featurize_records(records, model.featurization)
    return kept, graphs


def workload(csv: Path, model: MoleculeModel, n_examples: int) -> Workload:
    """The most confident test molecules (probability saturates), each attributed alone."""
    records, graphs = test_molecules(csv, model, 10 * n_examples)
    scores = predict(model, graphs)[:, TASK]
    chosen = torch.argsort(scores, descending=True)[:n_examples].tolist()
    problems = []
    for i in chosen:
        batch = pack([graphs[i]])
        problems.append(Problem(batch.inputs, tuple(torch.zeros_like(x) for x in batch.inputs), TASK,
                                batch.structure))
    return Workload("weave molecules", score_function(model.net, "probability"), problems,
                    {"model": str(model.path), "probabilities": scores[chosen].tolist()})


def run_throughput(csv: Path, model: MoleculeModel, n_molecules: int, steps: int) -> list[Row]:
    """Molecules per second: igkit's batched explain vs Captum one molecule at a time."""
    records, graphs = test_molecules(csv, model, n_molecules)
    forward = score_function(model.net, "probability")
    ig = IntegratedGradients(forward)
    ours: dict[int, np.ndarray] = {}

    def igkit_run() -> None:
        explanations, problems = explain_graphs(model, records, graphs, task=TASK, steps=steps,
                                                method="gausslegendre", score="probability", baseline="zero")
        if problems:
            raise RuntimeError(f"igkit failed on {len(problems)} molecules: {problems[0]}")
        ours.update({k: e.atom_features for k, e in enumerate(explanations)})

    theirs: dict[int, np.ndarray] = {}

    def captum_run() -> None:
        for k, g in enumerate(graphs):
            batch = pack([g])
            atoms, _ = ig.attribute(batch.inputs, target=TASK, additional_forward_args=batch.structure,
                                    n_steps=steps, method="gausslegendre")
            theirs[k] = atoms[0].detach().numpy()

    igkit_times, captum_time = sandwiched(igkit_run, captum_run)
    scale = max(float(np.abs(a).max()) for a in theirs.values())
    difference = max(float(np.abs(ours[k] - theirs[k]).max()) for k in theirs) / scale
    typical = pack([sorted(graphs, key=lambda g: g.n_atoms + g.n_pairs)[len(graphs) // 2]])
    curve = milliseconds_per_path_point(forward, typical.inputs, typical.structure, TASK,
                                        (1, 10, steps, 5 * steps))
    details = {"model": str(model.path), "data": str(csv), "curve_for": "the median-size molecule",
               "max_attribution_difference_vs_captum": difference}
    return [throughput_row("benzene test molecules", len(graphs), igkit_times, captum_time, steps,
                           "Captum one at a time", 10.0, "mol/s", curve, details)]
