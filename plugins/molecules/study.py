"""Why do atom attributions miss fragments on AND tasks? A study with a number per hypothesis.

One command rebuilds the tasks, trains (or reuses) every model and writes the table::

    python -m igkit.plugins.molecules.study --work study_work --out plugins/molecules/docs/study --limit 100

(``--tasks`` and ``--variants`` run parts, ``--table DIRS`` merges parts into one table.)
Tasks are the balanced known-answer tasks of :data:`~.tasks.NAMED_TASKS` (``make-task
--task NAME``). Every variant is scored like the benchmark: per test positive, the
ROC-AUC of the atom scores against the rule's atoms, averaged over molecules. The
atom score is the atom's own share plus half of each of its pairs (``with_pairs``),
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
from typing import Callable

import numpy as np
import torch

from igkit import attribute, integrated_gradients
from igkit.errors import IgkitWarning
from igkit.evaluation import attribution_auc
from igkit.records import read_json, write_csv, write_json

from .batching import pack, size_batches
from .checkpoint import MoleculeModel, featurization_for, load_model, new_model, predict, save_model
from .featurize import MolGraph
from .readers import read_molecules
from .tasks import Task, balanced_selection, clean_training_negatives, fragments, make_task, write_task_csv
from .train import evaluate_split, fit, load_labelled_csv
from .defaults import DEFAULT_BASELINE, DEFAULT_SCORE
from .weave import baseline_function, carbon_skeleton, score_function

TWO = ("fluoride_carbonyl", "alkane_carbonyl", "chloride_carbonyl")
THREE = ("amine_ether_benzene", "fluoride_carbonyl_ether")
TASKS = (*TWO, *THREE, "benzene")
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


# ----------------------------------------------------------------------------- models

def gated_forward(model: MoleculeModel, score: str = "logit") -> Callable[..., torch.Tensor]:
    """``forward(gate, atoms, pairs, pair_index, atom_mask, pair_mask)``: atom presence as an input.

    gate ``[B, N]`` scales each atom's mask and g_i·g_j each pair's mask; gate 1 is the
    molecule, gate 0 the empty molecule.
    """
    net = model.net
    squash = score == "probability"

    def forward(gate, atoms, pairs, pair_index, atom_mask, pair_mask):
        g = gate * atom_mask
        gi = torch.gather(g, 1, pair_index[..., 0])
        gj = torch.gather(g, 1, pair_index[..., 1])
        out = net(atoms, pairs, pair_index, g, pair_mask * gi * gj)
        return torch.sigmoid(out) if squash else out

    return forward


def plain_forward(model: MoleculeModel, score: str = "logit"):
    net = model.net
    squash = score == "probability"

    def forward(atoms, pairs, pair_index, atom_mask, pair_mask):
        out = net(atoms, pairs, pair_index, atom_mask, pair_mask)
        return torch.sigmoid(out) if squash else out

    return forward


# ----------------------------------------------------------------------------- attributions

def with_pairs(graph: MolGraph, atoms: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Atom scores with half of each pair added to both of its atoms (as ``attribution.with_pairs``)."""
    out = np.asarray(atoms, dtype=np.float64).copy()
    half = np.asarray(pairs, dtype=np.float64) / 2
    np.add.at(out, graph.pair_index[:, 0], half)
    np.add.at(out, graph.pair_index[:, 1], half)
    return out


def attributions(models: list[MoleculeModel], graphs: list[MolGraph], methods: list[str], *, steps: int = 48,
                 mean_features: tuple[np.ndarray, np.ndarray] | None = None, per_call: int = 16
                 ) -> dict[str, list[tuple[np.ndarray, np.ndarray | None]]]:
    """Per method and molecule: (atom scores with pairs folded in, own-only scores or None, scores
    with only the bonded pairs folded in or None).

    Several models (an ensemble) average their attributions.
    """
    out: dict[str, list] = {m: [None] * len(graphs) for m in methods}
    for idx in size_batches(graphs, per_call):
        gs = [graphs[i] for i in idx]
        batch = pack(gs)
        sums: dict[str, list] = {}
        for model in models:
            model.net.eval()
            for name in methods:
                values = _one_method(model, batch, name, steps, mean_features)
                if name not in sums:
                    sums[name] = values
                else:
                    sums[name] = [tuple(a + b for a, b in zip(x, y)) for x, y in zip(sums[name], values)]
        for name in methods:
            for b, (i, g) in enumerate(zip(idx, gs)):
                entry = sums[name][b]
                if len(entry) == 1:        # already per atom
                    out[name][i] = (entry[0][:g.n_atoms], None, None)
                else:
                    a, p = entry[0][:g.n_atoms], entry[1][:g.n_pairs]
                    out[name][i] = (with_pairs(g, a, p), a, with_pairs(g, a, np.where(g.bonded, p, 0.0)))
    return out


def _one_method(model, batch, name, steps, mean_features):
    score = "probability" if name.endswith("_prob") else "logit"
    base = name[:-5] if name.endswith("_prob") else name
    structure = batch.structure
    if base == "ig_presence":
        gate = batch.atom_mask.clone()
        r = integrated_gradients(gated_forward(model, score), gate, target=0, steps=steps,
                                 forward_args=(batch.atoms, batch.pairs, *structure))
        return [(r.attributions[b].detach().numpy(),) for b in range(len(batch))]
    if base == "occlusion":
        return _occlusion(model, batch, score)
    forward = plain_forward(model, score)
    if base in ("ig", "ig_carbon", "ig_mean", "ig_zero_carbon"):
        if base == "ig":
            baselines = None
        elif base == "ig_carbon":
            baselines = carbon_skeleton(batch.atoms, batch.pairs)
        elif base == "ig_zero_carbon":      # two baselines, attributions averaged
            atoms, pairs = carbon_skeleton(batch.atoms, batch.pairs)
            baselines = (torch.stack([torch.zeros_like(atoms), atoms]), torch.stack([torch.zeros_like(pairs), pairs]))
        else:
            ma, mp = (torch.as_tensor(m, dtype=torch.float32) for m in mean_features)
            baselines = (batch.atom_mask[..., None] * ma, batch.pair_mask[..., None] * mp)
        r = integrated_gradients(forward, batch.inputs, baselines, target=0, steps=steps, forward_args=structure)
        a, p = r.attribution_tuple
    else:
        a, p = attribute(base, forward, batch.inputs, target=0, forward_args=structure)
    a, p = a.detach().sum(-1).numpy(), p.detach().sum(-1).numpy()
    return [(a[b], p[b]) for b in range(len(batch))]


@torch.no_grad()
def _occlusion(model, batch, score):
    forward = gated_forward(model, score)
    full = forward(batch.atom_mask, batch.atoms, batch.pairs, *batch.structure)[:, 0]
    out = []
    n = batch.atoms.shape[1]
    for b in range(len(batch)):
        k = int(batch.atom_mask[b].sum())
        gate = batch.atom_mask[b].repeat(k, 1)
        gate[torch.arange(k), torch.arange(k)] = 0
        rep = lambda t: t[b:b + 1].expand(k, *t.shape[1:])  # noqa: E731
        scores = forward(gate, rep(batch.atoms), rep(batch.pairs), rep(batch.pair_index), rep(batch.atom_mask),
                         rep(batch.pair_mask))[:, 0]
        drop = np.zeros(n)
        drop[:k] = (full[b] - scores).numpy()
        out.append((drop,))
    return out


def default_attributions(model: MoleculeModel, graphs: list[MolGraph], *, score: str = DEFAULT_SCORE,
                         baseline: str = DEFAULT_BASELINE, steps: int = 64
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per molecule (atom attributions, pair attributions): IG of ``score`` from ``baseline``,
    igkit's defaults for molecules (fixed ``steps`` Gauss–Legendre points)."""
    forward = score_function(model.net, score)
    out: list = [None] * len(graphs)
    for idx in size_batches(graphs, 16):
        gs = [graphs[i] for i in idx]
        batch = pack(gs)
        r = integrated_gradients(forward, batch.inputs, baseline_function(baseline), target=0,
                                 steps=steps, forward_args=batch.structure)
        a, p = (t.detach().sum(-1).numpy() for t in r.attribution_tuple)
        for b, (i, g) in enumerate(zip(idx, gs)):
            out[i] = (a[b, :g.n_atoms], p[b, :g.n_pairs])
    return out


def default_atom_scores(model: MoleculeModel, graphs: list[MolGraph], **options) -> list[np.ndarray]:
    """Atom scores the way igkit explains molecules by default: IG of ``DEFAULT_SCORE`` from
    ``DEFAULT_BASELINE``, each atom's own share plus half of each of its pairs."""
    return [with_pairs(g, a, p) for g, (a, p) in zip(graphs, default_attributions(model, graphs, **options))]


def fragments_found(task: Task, mol, scores: np.ndarray) -> list[bool]:
    """Per fragment of the rule: is its atoms' mean score above the mean of the atoms outside the rule?"""
    truth = task.truth(mol)
    rest = scores[~truth].mean() if (~truth).any() else 0.0
    return [bool(scores[sorted(part.atoms(mol))].mean() > rest) for part in fragments(task.rule)]


def auroc(pairs_list, truths) -> tuple[float, float, float]:
    """Mean per-molecule atom AUROC: (with pairs, own only, with bonded pairs only; NaN when not defined)."""
    def mean(values):
        v = np.array(values, dtype=float)
        return float(np.nanmean(v)) if not np.isnan(v).all() else float("nan")

    return tuple(mean([attribution_auc(entry[k], t) if entry[k] is not None else np.nan
                       for entry, t in zip(pairs_list, truths)]) for k in range(3))


# ----------------------------------------------------------------------------- shortcut check

@torch.no_grad()
def fragment_deletion(model: MoleculeModel, task: Task, graphs: list[MolGraph]) -> dict[str, float]:
    """Counterfactuals: delete the atoms of one fragment (all its matches); how often does the
    positive prediction survive? A model of the AND rule should call every such molecule negative."""
    parts = fragments(task.rule)
    forward = gated_forward(model, "logit")
    kept = []
    for g in graphs:
        batch = pack([g])
        survives = []
        for part in parts:
            gate = batch.atom_mask.clone()
            gate[0, sorted(part.atoms(g.mol))] = 0
            survives.append(float(forward(gate, batch.atoms, batch.pairs, *batch.structure)[0, 0] > 0))
        kept.append(survives)
    kept = np.array(kept)
    return {"still_positive_after_deleting_one_fragment": float(kept.mean()),
            **{f"still_positive_without_part{k + 1}": float(kept[:, k].mean()) for k in range(len(parts))}}


# ----------------------------------------------------------------------------- driver

def _pool():
    from .tasks import default_pool

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


def test_positives(task_name: str, work: Path, featurization, limit: int) -> tuple[list[MolGraph], list[np.ndarray]]:
    data_csv = build_task(task_name, work)
    records, _ = read_molecules(data_csv, id_col="mol_id")
    task = make_task(task_name)
    from .featurize import featurize
    chosen = [r for r in records if r.fields["split"] == "test" and task.label(r.mol) > 0.5][:limit]
    graphs = [featurize(r.mol, featurization) for r in chosen]
    return graphs, [task.truth(r.mol) for r in chosen]


def mean_features(task_name: str, work: Path, featurization) -> tuple[np.ndarray, np.ndarray]:
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
            cache[key] = test_positives(task_name, work, model.featurization, limit)
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.md").write_text(summary_markdown(rows))
    write_json(out / "study.json", rows)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("task", "model"), k))
    write_csv(out / "study.csv", columns, ([r.get(c, "") for c in columns] for r in rows))


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
