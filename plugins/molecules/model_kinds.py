"""Which kind of network ``--model`` names: igkit's weave checkpoint, a chemprop v2 checkpoint, or a
PyTorch Geometric model built by ``module:factory`` with a state-dict file.

Light on purpose (no torch, RDKit or chemprop import): the explain command's options are built from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from igkit.errors import IGInputError

MODEL_KINDS = ("auto", "weave", "chemprop", "pyg")


def resolve_model_kind(source: str | None, kind: str = "auto", weights: str | None = None) -> str:
    """``weave``, ``chemprop`` or ``pyg`` for ``--model source`` (``--model-kind`` forces one)."""
    from .chemprop_checkpoint import is_chemprop_checkpoint

    if kind not in MODEL_KINDS:
        raise IGInputError(f"unknown --model-kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    if kind == "auto":
        if weights is not None or (source and ":" in source and not Path(source).exists()):
            kind = "pyg"
        elif is_chemprop_checkpoint(source):
            kind = "chemprop"
        else:
            kind = "weave"
    if kind != "weave" and source is None:
        raise IGInputError(f"--model-kind {kind} needs --model (a chemprop checkpoint, or module:factory for "
                           f"PyTorch Geometric)")
    if kind == "pyg" and weights is None:
        raise IGInputError("a PyTorch Geometric model needs --weights FILE (its state dict) beside --model "
                           "module:factory")
    if kind != "pyg" and weights is not None:
        raise IGInputError("--weights is for PyTorch Geometric models (--model module:factory); a chemprop or "
                           "weave checkpoint holds its own weights")
    return kind


def load_graph_model(kind: str, source: str, *, trust_checkpoint: bool = False, weights: str | None = None,
                     task: str | int | None = None, baseline: str = "zero+carbon") -> Any:
    """A chemprop or PyG model ready to explain; ``--task`` and ``--baseline`` checked now, not per molecule."""
    if baseline == "carbon":
        raise IGInputError("--baseline carbon is for igkit's weave networks (it rebuilds weave pair features); "
                           "chemprop and PyTorch Geometric models integrate from all-zero atom and bond features")
    if kind == "chemprop":
        from .chemprop_checkpoint import load_chemprop

        model = load_chemprop(source, trust_checkpoint=trust_checkpoint)
    else:
        from .pyg_model import load_pyg

        model = load_pyg(source, weights)
    model.task_index(task)
    return model


def is_graph_model(model: Any) -> bool:
    """Whether ``model`` is a bond-graph model (chemprop, PyTorch Geometric) rather than a weave network."""
    return getattr(model, "family", "weave") != "weave"


def predict_any(model: Any, graphs: list, score: str = "logit"):
    """Scores ``[n, tasks]`` of featurized molecules for any model kind."""
    if is_graph_model(model):
        from .bond_graph import predict

        return predict(model, graphs, score=score)
    from .checkpoint import predict

    return predict(model, graphs, score=score)


def featurize_records(records: list, model: Any) -> tuple[list, list, list]:
    """Each record featurized as ``model`` reads molecules; the ones that cannot be become problems."""
    if is_graph_model(model):
        return featurize_each(records, model.featurize)
    from .featurize import featurize

    return featurize_each(records, lambda mol: featurize(mol, model.featurization))


def featurize_each(records: list, featurize_one: Callable[[Any], Any]) -> tuple[list, list, list]:
    """``(kept records, their graphs, problems)``: a record ``featurize_one`` refuses becomes a problem."""
    from .readers import Problem

    kept, graphs, problems = [], [], []
    for rec in records:
        try:
            graphs.append(featurize_one(rec.mol))
            kept.append(rec)
        except IGInputError as exc:
            problems.append(Problem(rec.row, rec.id, rec.smiles, str(exc), rec.source))
    return kept, graphs, problems
