#!/usr/bin/env python3
"""Why do atom attributions miss fragments on AND tasks? A study with a number per hypothesis.

One command rebuilds the tasks, trains (or reuses) every model and writes the table::

    python scripts/molecules_study/run_study.py --work study_work --out docs/molecules/study --limit 100

(``--tasks`` and ``--variants`` run parts, ``--table DIRS`` merges parts into one table.)
Tasks are the balanced known-answer tasks of
:data:`igkit.plugins.molecules.tasks.NAMED_TASKS` (``make-task --task NAME``). Every
variant is scored like the benchmark: per test positive, the ROC-AUC of the atom scores
against the rule's atoms, averaged over molecules. The atom score is the atom's own share plus half of each of its pairs (``with_pairs``),
``own`` only its own features; attributions of "presence" and occlusion are already
per atom.

Attribution variants (all on the classification logit unless named ``prob``):

* ``ig`` — integrated gradients from the all-zero baseline (atom and pair features
  scaled together), the explain command's default on ``prob``;
* ``ig_presence`` — integrated gradients over each atom's *presence*: a gate
  g ∈ [0, 1] multiplies the atom's mask (and g_i·g_j each pair's mask), features
  stay at the input; the baseline is the empty molecule, not a molecule of all-zero
  atoms that still count in the readout's histogram;
* ``ig_carbon`` — baseline: every atom a carbon, every bond single (pairs keep their
  distances), so only what differs from a plain carbon skeleton is attributed;
* ``ig_mean`` — baseline: the training set's mean atom and pair feature vectors;
* ``saliency``, ``grad_x_input``, ``smoothgrad`` — igkit's other methods;
* ``occlusion`` — score drop when one atom (and its pairs) is removed;
* ``ig_zero_carbon`` — the zero and carbon-skeleton baselines averaged: igkit's default.

Model variants: architectures (W1N2 … W2N∞, dense layers), training choices (weight
decay, featurization, seeds and their ensembles) and training data (the benchmark's
mix of partial negatives, clean training negatives, counterfactual negatives). Each row
also reports how often a test positive stays positive when one fragment's atoms are
deleted (``fragment_deletion``: the shortcut check).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from igkit import IgkitWarning, read_json
from igkit.plugins.molecules.checkpoint import (MoleculeModel, featurization_for, load_model, new_model, predict,
                                                save_model)
from igkit.plugins.molecules.featurize import MolGraph, featurize
from igkit.plugins.molecules.multifragment import fragment_deletion
from igkit.plugins.molecules.readers import read_molecules
from igkit.plugins.molecules.tasks import (balanced_selection, clean_training_negatives, default_pool, fragments,
                                           make_task, write_task_csv)
from igkit.plugins.molecules.train import evaluate_split, fit, load_labelled_csv
from study_attributions import attributions, auroc
from study_table import TASKS, summary_markdown, write_table

SIZES = dict(atom_hidden=32, pair_hidden=32, readout_hidden=32, dense_hidden=64)


@dataclass(frozen=True)
class Variant:
    """How one model is trained."""

    arch: str = "w2n2"
    dense_layers: int = 2
    seed: int = 0
    weight_decay: float = 0.0
    epochs: int = 40
    patience: int = 6
    partial_negatives: bool = True
    scheme: str = "simple"
    counterfactuals: bool = False

    @property
    def name(self) -> str:
        out = f"{self.arch}_d{self.dense_layers}_s{self.seed}"
        if self.scheme != "simple":
            out += f"_{self.scheme}"
        if self.counterfactuals:
            out += "_cf"
        if self.weight_decay:
            out += f"_wd{self.weight_decay:g}"
        if not self.partial_negatives:
            out += "_nopartial"
        return out


def _pool():
    """The task pool's molecules, each SMILES once."""
    records, seen = [], set()
    for source in default_pool():
        found, _ = read_molecules(source, id_col="mol_id" if str(source).endswith(".csv") else None)
        for rec in found:
            if rec.smiles not in seen:
                seen.add(rec.smiles)
                records.append(rec)
    return records


def build_task(name: str, work: Path, partial: bool = True, seed: int = 0, counterfactuals: bool = False) -> Path:
    """The task CSV as ``make-task --task NAME [--counterfactuals]`` writes it (cached in ``work``).

    ``partial=False``: ``make-task --training-negatives clean``, the same task (same test
    split) with every *training* negative that holds part of the rule swapped for a pool
    molecule holding none of it.
    """
    path = work / f"{name}{'' if partial else '_nopartial'}{'_cf' if counterfactuals else ''}.csv"
    if path.is_file():
        return path
    records = _pool()
    task = make_task(name)
    chosen, _ = balanced_selection(task, records, seed=seed)
    if partial:
        write_task_csv(task, [records[k] for k in chosen], path, seed=seed, counterfactuals=counterfactuals)
        return path
    chosen_records, _ = clean_training_negatives(task, [records[k] for k in chosen], records, seed=seed)
    write_task_csv(task, chosen_records, path, seed=seed, counterfactuals=counterfactuals)
    return path


def get_model(task_name: str, variant: Variant, work: Path, log) -> tuple[MoleculeModel, dict]:
    """The variant's model for the task: loaded from ``work/models`` if trained before, else trained and saved."""
    stem = work / "models" / f"{task_name}_{variant.name}"
    data_csv = build_task(task_name, work, variant.partial_negatives, counterfactuals=variant.counterfactuals)
    featurization = featurization_for(variant.arch, variant.scheme)
    if (stem.with_suffix(".json")).is_file():
        model = load_model(stem)
        return model, model.info
    data = load_labelled_csv(data_csv, featurization, split_col="split", id_col="mol_id", seed=variant.seed)
    torch.manual_seed(variant.seed)
    model = new_model(featurization, variant.arch, dense_layers=variant.dense_layers, **SIZES)
    start = time.perf_counter()
    fit(model, data.splits["train"], data.splits["valid"], epochs=variant.epochs, patience=variant.patience,
        seed=variant.seed, weight_decay=variant.weight_decay, show_progress=False, log=log)
    model.info = {"task": task_name, "variant": variant.__dict__, "seconds": round(time.perf_counter() - start, 1),
                  "metrics": {k: evaluate_split(model, s) for k, s in data.splits.items()}}
    save_model(model, stem)
    return model, model.info


def held_out_positives(task_name: str, work: Path, featurization, limit: int
                       ) -> tuple[list[MolGraph], list[np.ndarray]]:
    """Up to ``limit`` test-split positives of the task, featurized, and their rule atoms."""
    data_csv = build_task(task_name, work)
    records, _ = read_molecules(data_csv, id_col="mol_id")
    task = make_task(task_name)
    chosen = [r for r in records if r.fields["split"] == "test" and task.label(r.mol) > 0.5][:limit]
    graphs = [featurize(r.mol, featurization) for r in chosen]
    return graphs, [task.truth(r.mol) for r in chosen]


def mean_features(task_name: str, work: Path, featurization) -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean atom and pair feature vectors (the ``ig_mean`` baseline)."""
    data = load_labelled_csv(build_task(task_name, work), featurization, split_col="split", id_col="mol_id")
    graphs = data.splits["train"].graphs
    return (np.concatenate([g.atoms for g in graphs]).mean(0),
            np.concatenate([g.pairs for g in graphs if g.n_pairs]).mean(0))


ALL_METHODS = ["ig_prob", "ig", "ig_presence", "ig_carbon", "ig_mean", "ig_zero_carbon", "saliency",
               "grad_x_input", "smoothgrad", "occlusion", "ig_presence_prob", "occlusion_prob"]
#: what every model variant is scored with (the others only for the two reference models)
CORE_METHODS = ["ig_prob", "ig", "ig_presence", "ig_carbon", "ig_mean", "ig_zero_carbon", "occlusion"]


def run(work: Path, out: Path, tasks=TASKS, limit: int = 120, quick: bool = False, log=sys.stderr,
        only: list[str] | None = None) -> list[dict]:
    """Train/load the models, score every (model, method) pair; rows for the table."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=IgkitWarning)   # fixed 48 steps: the ranking is what is scored
    work.mkdir(parents=True, exist_ok=True)
    (work / "models").mkdir(exist_ok=True)
    rows = []
    model_variants = {
        "old default (w2n4, 2 dense)": Variant("w2n4"),
        "W2N2": Variant("w2n2"),
        "W1N2": Variant("w1n2"),
        "W3N2": Variant("w3n2"),
        "W2N1": Variant("w2n1"),
        "W2N∞": Variant("w2ninf"),
        "W2N2, 1 dense": Variant("w2n2", dense_layers=1),
        "W2N2, weight decay 1e-2": Variant("w2n2", weight_decay=1e-2),
        "W2N2, no partial negatives": Variant("w2n2", partial_negatives=False),
        "W2N2, no partial negatives, seed 1": Variant("w2n2", seed=1, partial_negatives=False),
        "W2N2, no partial negatives, seed 2": Variant("w2n2", seed=2, partial_negatives=False),
        "W2N2, full featurization": Variant("w2n2", scheme="full"),
        "W2N2, counterfactual negatives": Variant("w2n2", counterfactuals=True),
        "W2N2, counterfactual negatives, seed 1": Variant("w2n2", seed=1, counterfactuals=True),
        "W2N2, counterfactual negatives, seed 2": Variant("w2n2", seed=2, counterfactuals=True),
        "W2N2 seed 1": Variant("w2n2", seed=1),
        "W2N2 seed 2": Variant("w2n2", seed=2),
    }
    if quick:
        model_variants = {k: v for k, v in model_variants.items() if k in ("old default (w2n4, 2 dense)", "W2N2")}
    core = ("old default (w2n4, 2 dense)", "W2N2", "W2N2, counterfactual negatives", "W2N2 seed 1", "W2N2 seed 2",
            "W2N2, counterfactual negatives, seed 1", "W2N2, counterfactual negatives, seed 2",
            "W2N2, no partial negatives", "W2N2, no partial negatives, seed 1",
            "W2N2, no partial negatives, seed 2")
    phases = [{k: v for k, v in model_variants.items() if k in core},
              {k: v for k, v in model_variants.items() if k not in core}]
    if only:
        phases = [{k: v for k, v in model_variants.items() if k in only}]
    for phase, variants in enumerate(phases):
        for task_name in tasks:
            _study_task(task_name, variants, work, out, rows, limit, ensemble_too=phase == 0, log=log)
    return rows


def _study_task(task_name, model_variants, work, out, rows, limit, ensemble_too, log) -> None:
    """Score every variant on one task (and the seed ensemble); append rows, rewrite the table."""
    task = make_task(task_name)
    if len(fragments(task.rule)) == 1:     # one fragment: no partial or counterfactual negatives, one seed
        model_variants = {k: v for k, v in model_variants.items()
                          if not v.counterfactuals and v.partial_negatives and v.seed == 0}
    cache: dict[str, tuple[list, list]] = {}
    ensembles: dict[str, list] = {"W2N2": [], "W2N2, counterfactual negatives,": [],
                                  "W2N2, no partial negatives,": []}
    for label, variant in model_variants.items():
        model, info = get_model(task_name, variant, work, log)
        key = model.featurization.fingerprint
        if key not in cache:
            cache[key] = held_out_positives(task_name, work, model.featurization, limit)
        graphs, truths = cache[key]
        methods = ALL_METHODS if label in ("old default (w2n4, 2 dense)", "W2N2") else CORE_METHODS
        means = mean_features(task_name, work, model.featurization) if "ig_mean" in methods else None
        start = time.perf_counter()
        found = attributions([model], graphs, methods, mean_features=means)
        probs = predict(model, graphs)[:, 0].numpy()
        row = {"task": task_name, "model": label, "test_roc_auc": info["metrics"]["test"]["roc_auc"],
               "positives": len(graphs), "saturated_p>0.99": float((probs > 0.99).mean())}
        if task.rule is not None and len(fragments(task.rule)) > 1:
            row.update(fragment_deletion(model, task, graphs))
        for name, values in found.items():
            row[name], row[f"{name}_own"], row[f"{name}_bonds"] = auroc(values, truths)
        rows.append(row)
        print(f"{task_name:24s} {label:28s} " + " ".join(
            f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float) and not k.endswith("_own")
            and not np.isnan(v)) + f" ({time.perf_counter() - start:.0f}s)", file=log, flush=True)
        if variant.arch == "w2n2" and variant.dense_layers == 2 and not variant.weight_decay \
                and variant.scheme == "simple":
            group = "W2N2, counterfactual negatives," if variant.counterfactuals else \
                "W2N2" if variant.partial_negatives else "W2N2, no partial negatives,"
            ensembles[group].append(model)
    for prefix, ensemble in ensembles.items():
        if not ensemble_too or len(ensemble) < 2:
            continue
        graphs, truths = cache[ensemble[0].featurization.fingerprint]
        means = mean_features(task_name, work, ensemble[0].featurization)
        found = attributions(ensemble, graphs, CORE_METHODS, mean_features=means)
        row = {"task": task_name, "model": f"{prefix} ensemble of {len(ensemble)} seeds (averaged attributions)",
               "positives": len(graphs)}
        for name, values in found.items():
            row[name], row[f"{name}_own"], row[f"{name}_bonds"] = auroc(values, truths)
        rows.append(row)
        print(f"{task_name:24s} {row['model']} " + " ".join(f"{k}={row[k]:.3f}" for k in found), file=log,
              flush=True)
    write_table(rows, out)


#: the hypothesis table: (hypothesis, setting, model row, column of study.csv)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="study_work", help="task CSVs and trained models (reused when present)")
    p.add_argument("--out", default="study_out", help="study.csv and study.json")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--limit", type=int, default=120, help="test positives scored per task")
    p.add_argument("--quick", action="store_true", help="only the old default and W2N2")
    p.add_argument("--variants", default=None, help="only these model rows (labels, separated by ';')")
    p.add_argument("--table", default=None, help="no training: merge the study.json files of these "
                   "comma-separated folders into OUT/study.md, study.csv and study.json")
    args = p.parse_args(argv)
    if args.table:
        rows = [r for folder in args.table.split(",") for r in read_json(Path(folder) / "study.json")]
        write_table(rows, Path(args.out))
        print(summary_markdown(rows))
        return 0
    run(Path(args.work), Path(args.out), tuple(args.tasks.split(",")), args.limit, args.quick,
        only=args.variants.split(";") if args.variants else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
