"""Training weave models from a CSV of SMILES and labels, with early stopping on a validation split.

Poison is refused, not trained on: a label that is not a finite number (``inf``, ``nan``, ``1e999``)
or a molecule whose features are not finite skips its row with the file's line number (an empty
cell is a missing label, left out of the loss); a label column with no label at all stops the
command; a loss that turns NaN or infinite stops training before any model is written.
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from igkit.errors import IGInputError, NonFiniteError
from igkit.attribution.evaluation import attribution_auc
from igkit.run.progress import progress

from .batching import pack, size_batches
from .checkpoint import MoleculeModel, predict
from .featurize import Featurization, MolGraph, featurize
from .readers import Problem, read_molecules

SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "dev": "valid",
               "test": "test"}


@dataclass
class Split:
    """Featurized molecules of one split and their labels ``[n, tasks]`` (NaN = missing)."""

    ids: list[str]
    graphs: list[MolGraph]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.graphs)


@dataclass
class LabelledData:
    splits: dict[str, Split]
    tasks: list[str]
    task_type: str
    problems: list[Problem] = field(default_factory=list)


def load_labelled_csv(path: str | Path, featurization: Featurization, *, smiles_col: str = "smiles",
                      label_cols: Sequence[str] = ("label",), split_col: str | None = None,
                      id_col: str | None = None, valid_fraction: float = 0.1, task_type: str = "auto",
                      seed: int = 0) -> LabelledData:
    """Read, featurize and split a labelled CSV; bad rows are reported in ``problems``."""
    if not 0 <= valid_fraction < 1:  # also refuses NaN
        raise IGInputError(f"--valid-fraction {valid_fraction} must be a share from 0 to below 1 (e.g. 0.1)")
    records, problems = read_molecules(path, smiles_col=smiles_col, id_col=id_col)
    if not records:
        raise IGInputError(f"no usable molecules in {path} ({len(problems)} rows failed)")
    missing = [c for c in [*label_cols, *([split_col] if split_col else [])] if c not in records[0].fields]
    if missing:
        raise IGInputError(f"{Path(path).name} has no column(s) {', '.join(missing)}; its columns are "
                           f"{', '.join(records[0].fields)}")
    by_split: dict[str, list[tuple[str, MolGraph, list[float]]]] = {"train": [], "valid": [], "test": []}
    for rec in records:
        try:
            labels = [_label(rec.fields[c], c) for c in label_cols]
            split = _split_name(rec.fields[split_col]) if split_col else "train"
            graph = featurize(rec.mol, featurization)
            if not (np.isfinite(graph.atoms).all() and np.isfinite(graph.pairs).all()):
                raise IGInputError("its atom or pair features are not finite numbers")
        except IGInputError as exc:
            problems.append(Problem(rec.row, rec.id, rec.smiles, str(exc), rec.source))
            continue
        by_split[split].append((rec.id, graph, labels))
    rng = np.random.default_rng(seed)
    if not by_split["valid"] and by_split["train"]:
        order = rng.permutation(len(by_split["train"]))
        n_valid = max(1, int(round(valid_fraction * len(order))))
        train = by_split["train"]
        by_split["valid"] = [train[k] for k in order[:n_valid]]
        by_split["train"] = [train[k] for k in order[n_valid:]]
    if len(by_split["train"]) < 2:
        raise IGInputError(f"{path} has fewer than 2 training molecules after the split")
    splits = {name: Split([r[0] for r in rows], [r[1] for r in rows],
                          np.asarray([r[2] for r in rows], dtype=np.float32).reshape(len(rows), len(label_cols)))
              for name, rows in by_split.items() if rows}
    unlabelled = [c for k, c in enumerate(label_cols) if np.isnan(splits["train"].labels[:, k]).all()]
    if unlabelled:
        raise IGInputError(f"{path}: no training row has a label in column {unlabelled[0]!r} (all empty or "
                           f"refused); give each task labels to learn from")
    return LabelledData(splits, list(label_cols), _task_type(splits["train"].labels, task_type), problems)


def _label(text: str, column: str) -> float:
    """A finite label, NaN for an empty cell (a missing label), else the reason the row is refused."""
    text = (text or "").strip()
    if text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise IGInputError(f"label {text[:40]!r} in column {column!r} is not a number") from None
    if not math.isfinite(value):
        raise IGInputError(f"label {text[:40]!r} in column {column!r} is not a finite number; leave the "
                           f"cell empty for a missing label")
    return value


def _split_name(text: str) -> str:
    name = SPLIT_NAMES.get((text or "").strip().lower())
    if name is None:
        raise IGInputError(f"split value {text!r} is not one of train, valid, test")
    return name


def _task_type(labels: np.ndarray, requested: str) -> str:
    known = labels[~np.isnan(labels)]
    binary = bool(np.isin(known, (0.0, 1.0)).all())
    if requested == "auto":
        return "classification" if binary else "regression"
    if requested == "classification" and not binary:
        raise IGInputError("classification needs labels 0 or 1; use --task-type regression")
    return requested


def evaluate_split(model: MoleculeModel, split: Split) -> dict[str, float]:
    """Loss, and mean ROC-AUC over tasks (classification) or RMSE (regression), on one split."""
    scores = predict(model, split.graphs, score="logit")
    loss = float(_loss(model, scores, torch.from_numpy(split.labels)))
    scores = scores.numpy()
    if model.net.config.task_type == "classification":
        aucs = [attribution_auc(scores[ok, t], split.labels[ok, t] > 0.5)
                for t in range(scores.shape[1]) for ok in [~np.isnan(split.labels[:, t])]]
        return {"loss": loss, "roc_auc": float(np.nanmean(aucs)) if not np.isnan(aucs).all() else math.nan}
    err = scores - split.labels
    return {"loss": loss, "rmse": float(np.sqrt(np.nanmean(err ** 2)))}


def _loss(model: MoleculeModel, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    known = ~torch.isnan(y)
    y = torch.nan_to_num(y)
    if model.net.config.task_type == "classification":
        per = torch.nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none")
    else:
        std = model.net.output_std
        per = ((out - y) / std) ** 2
    return (per * known).sum() / known.sum().clamp_min(1)


@torch.no_grad()
def calibrate_norm(model: MoleculeModel, graphs: Sequence[MolGraph], batch_size: int = 128) -> None:
    """Set the readout batch norm's eval statistics to the mean and variance over all atoms of ``graphs``."""
    net = model.net
    width = net.config.readout_hidden
    total, squares, count = torch.zeros(width, dtype=torch.float64), torch.zeros(width, dtype=torch.float64), 0.0
    for idx in size_batches(graphs, batch_size):
        batch = pack([graphs[i] for i in idx])
        h = net.readout_inputs(*batch.inputs, *batch.structure).double()
        mask = batch.atom_mask.double().unsqueeze(-1)
        total += (h * mask).sum((0, 1))
        squares += (h * h * mask).sum((0, 1))
        count += float(mask.sum())
    mean = total / count
    net.norm.set_statistics(mean.float(), (squares / count - mean * mean).clamp_min(0).float())


def fit(model: MoleculeModel, train: Split, valid: Split, *, epochs: int = 30, batch_size: int = 64,
        lr: float = 1e-3, patience: int = 5, seed: int = 0, weight_decay: float = 0.0,
        show_progress: bool = True, log=None) -> list[dict[str, float]]:
    """Train with Adam; keep the weights of the epoch with the lowest validation loss; stop after
    ``patience`` epochs without a new lowest (ROC-AUC saturates at 1 on easy tasks, the loss does not)."""
    log = log or sys.stderr  # looked up at call time: the stream may have been replaced
    torch.manual_seed(seed)
    net = model.net
    if net.config.task_type == "regression":
        net.output_mean.copy_(torch.as_tensor(np.nanmean(train.labels, 0)))
        net.output_std.copy_(torch.as_tensor(np.nanstd(train.labels, 0)).clamp_min(1e-6))
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay) if weight_decay \
        else torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state, bad, history = math.inf, None, 0, []
    for epoch in range(1, epochs + 1):
        net.train()
        batches = size_batches(train.graphs, batch_size, shuffle=True, seed=seed + epoch)
        bar = progress(batches, desc=f"epoch {epoch}/{epochs}", enabled=show_progress)
        total, count = 0.0, 0
        for idx in bar:
            batch = pack([train.graphs[i] for i in idx])
            y = torch.from_numpy(train.labels[idx])
            loss = _loss(model, net(*batch.inputs, *batch.structure), y)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"training diverged: the loss became {loss.item()} in epoch {epoch} "
                                     f"(molecules {', '.join(train.ids[i] for i in idx[:5])}, ...); lower "
                                     f"--lr or check the labels; no model was written")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
            bar.set_postfix(f"loss {total / count:.4f}")
        net.eval()
        calibrate_norm(model, train.graphs, batch_size)
        metrics = {"epoch": epoch, "train_loss": total / count,
                   **{f"valid_{k}": v for k, v in evaluate_split(model, valid).items()}}
        history.append(metrics)
        value = metrics["valid_loss"]
        print("epoch {epoch}: train loss {train_loss:.4f}, ".format(**metrics) + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("valid_")), file=log, flush=True)
        if value < best:
            best, best_state, bad = value, copy.deepcopy(net.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                print(f"early stop: no validation improvement for {patience} epochs", file=log)
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return history
