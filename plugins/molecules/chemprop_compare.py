"""igkit's IG beside chemprop's own interpretation, on the same chemprop model and molecules.

chemprop v2 ships one interpretation in its package: Myerson values (exact for
molecules up to 20 atoms, sampled beyond), run as ``chemprop predict --callback
myerson``. Its Monte-Carlo tree search rationales exist only as a notebook in
chemprop's repository, not in the package, so they are not run here. This
module runs ``chemprop predict`` itself (chemprop's own code, unchanged) and
igkit on the same molecules, and reports seconds per molecule and how the atom
rankings agree: whether the top atom is the same, Kendall's tau between the two
atom vectors, and, for a rule task, each one's atom ROC-AUC against the rule's atoms.

``python -m igkit.plugins.molecules.chemprop_compare train --data benzene.csv --out best.pt`` trains
the small D-MPNN of the README and the tests with chemprop's Python API; ``... compare --model
best.pt --data benzene.csv --task benzene --limit 5 --out DIR`` compares (plugins/molecules/README.md
has the measured table).
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run_myerson(model: Path, smiles: list[str], folder: Path) -> tuple[list[np.ndarray], float, float]:
    """chemprop's Myerson values per molecule, with the CPU and wall seconds ``chemprop predict`` took."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "molecules.csv"
    data.write_text("smiles\n" + "".join(f"{s}\n" for s in smiles))
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    chemprop = Path(sys.executable).with_name("chemprop")
    subprocess.run([str(chemprop), "predict", "-i", str(data), "--model-paths", str(model), "-o",
                    str(folder / "predictions.csv"), "--callback", "myerson", "--num-workers", "0"],
                   check=True, capture_output=True)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - start
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    found = np.load(folder / "predictions_myerson_explanation.npz")
    return [np.asarray(found[f"arr_{k}"]).reshape(-1) for k in range(len(smiles))], cpu, wall


def compare(model: Path, smiles: list[str], folder: Path, task_name: str | None) -> dict:
    import torch

    import igkit
    from igkit.attribution.evaluation import attribution_auc, kendall_tau

    from .chemprop_checkpoint import load_chemprop
    from .tasks import make_task

    torch.set_num_threads(1)
    myerson, cpu, wall = run_myerson(model, smiles, folder)
    before, start = time.process_time(), time.perf_counter()
    found = igkit.explain("molecules", smiles, model=load_chemprop(model))
    ig_cpu, ig_wall = time.process_time() - before, time.perf_counter() - start
    task = make_task(task_name) if task_name else None
    rows = []
    for expl, values in zip(found, myerson):
        ig = expl.atom_totals
        row = {"smiles": expl.smiles, "atoms": len(ig), "same_top_atom": int(np.argmax(ig) == np.argmax(values)),
               "kendall_tau": kendall_tau(ig, values), "completeness_error": expl.completeness_error}
        if task is not None:
            truth = task.truth(expl.graph.mol)
            row.update(ig_atom_auroc=attribution_auc(ig, truth), myerson_atom_auroc=attribution_auc(values, truth),
                       ig_top_in_rule=int(truth[np.argmax(ig)]), myerson_top_in_rule=int(truth[np.argmax(values)]))
        rows.append(row)
    n = max(len(rows), 1)
    summary = {"molecules": len(rows), "model": str(model),
               "myerson_cpu_seconds_per_molecule": cpu / n, "myerson_wall_seconds_per_molecule": wall / n,
               "ig_cpu_seconds_per_molecule": ig_cpu / n, "ig_wall_seconds_per_molecule": ig_wall / n,
               **{f"mean_{k}": float(np.nanmean([r[k] for r in rows])) for k in rows[0]
                  if k not in ("smiles", "atoms")}} if rows else {"molecules": 0}
    return {"summary": summary, "rows": rows}


def train_benzene(data: Path, out: Path, molecules: int = 1000, epochs: int = 6) -> Path:
    """A small D-MPNN (hidden 64, depth 3, sum aggregation) trained on the first ``molecules`` training rows
    of ``data`` (smiles, label, split) with chemprop's Python API and lightning on the CPU, saved as
    ``chemprop train`` saves ``best.pt``, plus the lightning checkpoint beside it (``.ckpt``)."""
    import lightning.pytorch as pl
    import torch
    from chemprop import data as cdata, featurizers, models, nn
    from chemprop.models.utils import save_model

    torch.set_num_threads(1)
    with Path(data).open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"][:molecules]
    points = [cdata.MoleculeDatapoint.from_smi(r["smiles"], [float(r["label"])]) for r in rows]
    dataset = cdata.MoleculeDataset(points, featurizers.SimpleMoleculeMolGraphFeaturizer())
    loader = cdata.build_dataloader(dataset, batch_size=64, num_workers=0, seed=0)
    torch.manual_seed(0)
    model = models.MPNN(nn.BondMessagePassing(d_h=64, depth=3), nn.SumAggregation(),
                        nn.BinaryClassificationFFN(input_dim=64, hidden_dim=64), max_lr=3e-3)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, loader)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, model.eval(), ["benzene"])
    trainer.save_checkpoint(out.with_suffix(".ckpt"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the small benzene D-MPNN with chemprop's Python API")
    train.add_argument("--data", required=True, help="CSV with smiles, label and split columns")
    train.add_argument("--molecules", type=int, default=1000, help="training rows used")
    train.add_argument("--epochs", type=int, default=6, help="training epochs")
    train.add_argument("--out", required=True, help="the checkpoint to write (best.pt; .ckpt beside it)")
    run = sub.add_parser("compare", help="igkit's IG beside chemprop's Myerson values")
    run.add_argument("--model", required=True, help="chemprop v2 checkpoint (model_0/best.pt)")
    run.add_argument("--data", required=True, help="CSV with a smiles column (and label, split)")
    run.add_argument("--task", default=None, help="a rule task whose atoms are known (e.g. benzene): "
                     "molecules the rule calls positive in the test split are compared")
    run.add_argument("--limit", type=int, default=5, help="molecules (Myerson values take minutes each)")
    run.add_argument("--out", required=True, help="folder for chemprop's files and comparison.json")
    args = parser.parse_args(argv)
    if args.command == "train":
        print(train_benzene(Path(args.data), Path(args.out), args.molecules, args.epochs))
        return 0
    with open(args.data, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split", "test") == "test"
                and (args.task is None or r.get("label") == "1")]
    smiles = [r["smiles"] for r in rows[:args.limit]]
    result = compare(Path(args.model), smiles, Path(args.out), args.task)
    (Path(args.out) / "comparison.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
