"""Loading models written by ``chemprop train`` (chemprop v2: ``model_*.pt``, ``best.pt``, lightning ``.ckpt``).

A chemprop checkpoint is a pickle, and unpickling can run any code. igkit first
lists the Python objects the file names (without running anything) and loads it
with ``torch.load(weights_only=True)``, allowing only chemprop's own network
classes and torch modules, into a :class:`~.chemprop_model.ChempropModel`. A file naming anything else is refused with a
sentence naming ``--trust-checkpoint``; only with that flag is it unpickled in full.

chemprop does not store its featuriser settings in the model file; igkit picks
chemprop's atom featuriser whose width matches the network's input (v2 72,
v1 133, organic 44, RIGR 52 atom features) and refuses a network that expects
extra atom, bond or molecule descriptors, which igkit cannot recompute.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from igkit.errors import IGInputError, ModelError

from .chemprop_model import ChempropModel

#: what a chemprop v2 checkpoint may name and still be loaded with ``weights_only=True``
ALLOWED_PREFIXES = ("chemprop.nn.", "torch.nn.modules.", "lightning.fabric.utilities.data.AttributeDict",
                    "torchmetrics.")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
TRUST_HINT = ("pass --trust-checkpoint (Python: trust_checkpoint=True) to unpickle it in full only if you "
              "trust where the file came from: unpickling can run any code")
#: predictors whose first output per task is the value explained (regression: the mean, in the user's units)
REGRESSION = ("RegressionFFN", "MveFFN", "EvidentialFFN", "QuantileFFN")
CLASSIFICATION = ("BinaryClassificationFFN",)
ATOM_FEATURIZERS = {72: "v2", 133: "v1", 44: "organic", 52: "rigr"}
BOND_FEATURIZERS = {14: "multi_hot", 2: "rigr"}


def is_chemprop_checkpoint(source: str | Path | None) -> bool:
    """Whether ``--model`` names a chemprop checkpoint (by its suffix, or a folder ``chemprop train`` wrote;
    ``--model-kind chemprop`` forces it)."""
    if source is None:
        return False
    path = Path(str(source))
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or (path.is_dir() and any(path.rglob("best*.pt")))


def checkpoint_file(path: Path) -> Path:
    """The one model file of a folder ``chemprop train`` wrote (``model_0/best.pt``), or ``path`` itself."""
    if not path.is_dir():
        return path
    found = sorted(path.rglob("best*.pt"))
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found[:4]) or "none"
        raise IGInputError(f"{path} holds {len(found)} chemprop models (best*.pt: {listed}); igkit explains one "
                           f"model at a time: give its file")
    return found[0]


def load_chemprop(path: str | Path, *, trust_checkpoint: bool = False) -> ChempropModel:
    """A chemprop v2 checkpoint as a :class:`ChempropModel`; every refusal says what to do instead."""
    path = checkpoint_file(Path(path))
    if not path.is_file():
        raise IGInputError(f"{path}: no such chemprop checkpoint (give the model_0/best.pt or a .ckpt "
                           f"that `chemprop train` wrote)")
    document = _read(path, trust_checkpoint)
    if not isinstance(document, dict) or not isinstance(document.get("hyper_parameters"), dict) \
            or not isinstance(document.get("state_dict"), dict):
        if isinstance(document, dict) and "args" in document and "state_dict" in document:
            raise ModelError(f"{path} is a chemprop v1 checkpoint; igkit explains chemprop v2 models: convert it "
                             f"with `chemprop convert --conversion v1_to_v2 -i {path}` (chemprop ≥ 2.0) and "
                             f"give the converted file")
        raise ModelError(f"{path} is not a chemprop v2 checkpoint (it has no hyper_parameters and state_dict)")
    hparams = dict(document["hyper_parameters"])
    mp = dict(hparams.get("message_passing") or {})
    kind = getattr(mp.get("cls"), "__name__", "")
    if kind == "MulticomponentMessagePassing" or "blocks" in mp:
        raise ModelError(f"{path} is a multicomponent chemprop model (several SMILES columns per row); igkit "
                         f"explains chemprop models of one molecule per row; train one with a single "
                         f"--smiles-columns")
    if "atom_predictor" in hparams or "bond_predictor" in hparams or kind.startswith("MAB"):
        raise ModelError(f"{path} is a chemprop atom/bond property model; igkit explains molecule-level "
                         f"predictions only")
    predictor = dict(hparams.get("predictor") or {})
    predictor_name = getattr(predictor.get("cls"), "__name__", "")
    if predictor_name not in REGRESSION + CLASSIFICATION:
        raise ModelError(f"{path}: chemprop's {predictor_name or 'unknown'} predictor is not supported; igkit "
                         f"explains regression ({', '.join(REGRESSION)}) and binary classification models")
    featurizer, featurizer_name = _featurizer(path, mp, predictor)
    mpnn = _build(path, hparams, mp, predictor, document["state_dict"])
    columns = document.get("output_columns")
    n_tasks = int(predictor.get("n_tasks", 1))
    tasks = [str(c) for c in columns] if isinstance(columns, (list, tuple)) and len(columns) == n_tasks \
        and all(isinstance(c, str) for c in columns) else [f"task_{k}" for k in range(n_tasks)]
    task_type = "classification" if predictor_name in CLASSIFICATION else "regression"
    return ChempropModel(mpnn, featurizer, featurizer_name, tasks, task_type, predictor_name, path,
                         {"message_passing": kind, "predictor": predictor_name})


def _read(path: Path, trust: bool) -> Any:
    """The checkpoint's dictionary: weights-only when it names nothing outside chemprop's network classes."""
    import torch
    from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

    if trust:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a corrupt file fails in many ways; all mean the same to the user
            raise ModelError(f"{path} could not be read as a torch checkpoint: {exc}") from None
    try:
        names = get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:
        raise ModelError(f"{path} is not a torch checkpoint written by chemprop v2 ({exc})") from None
    foreign = sorted(n for n in names if not n.startswith(ALLOWED_PREFIXES))
    if any(n.startswith("chemprop.") and not n.startswith("chemprop.nn.") for n in foreign):
        raise ModelError(f"{path} pickles {', '.join(foreign)}: a chemprop v1 checkpoint or not a model file; "
                         f"igkit explains chemprop v2 models (convert v1 with `chemprop convert --conversion "
                         f"v1_to_v2 -i {path}`)")
    if foreign:
        raise ModelError(f"{path} names code that is not chemprop's network ({', '.join(foreign[:5])}), so "
                         f"igkit will not unpickle it; {TRUST_HINT}")
    # lightning's AttributeDict (a dict subclass) is read as a plain dict: the weights-only reader fills dicts only
    allowed = [(dict, n) if n == "lightning.fabric.utilities.data.AttributeDict" else _resolve(n) for n in names]
    try:
        with safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path} could not be loaded with weights_only=True ({str(exc).splitlines()[0]}); "
                         f"{TRUST_HINT}") from None


def _resolve(name: str) -> Any:
    """The class a checkpoint names; functions are never allowed (the reader could call them)."""
    module, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        raise ModelError(f"the checkpoint names {name}, which this chemprop does not have; is it from "
                         f"another chemprop version? (igkit needs chemprop>=2.3,<3)") from None
    if not isinstance(found, type):
        raise ModelError(f"the checkpoint names the function {name}, which igkit will not let the weights-only "
                         f"reader call; {TRUST_HINT}")
    return found


def _featurizer(path: Path, mp: dict, predictor: dict) -> tuple[Any, str]:
    """chemprop's molecule featuriser whose widths match the network's input layer."""
    from chemprop.featurizers import MultiHotAtomFeaturizer, SimpleMoleculeMolGraphFeaturizer
    from chemprop.featurizers.atom import RIGRAtomFeaturizer
    from chemprop.featurizers.bond import MultiHotBondFeaturizer, RIGRBondFeaturizer

    d_v, d_e, d_vd = int(mp.get("d_v", 0)), int(mp.get("d_e", 0)), int(mp.get("d_vd") or 0)
    if d_vd:
        raise ModelError(f"{path}: the model reads {d_vd} extra atom descriptors per atom (--atom-descriptors), "
                         f"which igkit cannot compute; explain a model trained without them")
    if int(predictor.get("input_dim", 0)) != int(mp.get("d_h", 0)):
        raise ModelError(f"{path}: the model reads extra molecule features (--features-generators or "
                         f"--descriptors: its predictor takes {predictor.get('input_dim')} inputs, message "
                         f"passing gives {mp.get('d_h')}), which igkit cannot compute; explain a model "
                         f"trained without them")
    atom, bond = ATOM_FEATURIZERS.get(d_v), BOND_FEATURIZERS.get(d_e)
    if atom is None or bond is None or (atom == "rigr") != (bond == "rigr"):
        raise ModelError(f"{path}: the network expects {d_v} atom and {d_e} bond features, which no chemprop "
                         f"featuriser igkit knows makes (atoms: v2 72, v1 133, organic 44, RIGR 52; bonds: 14, "
                         f"RIGR 2); was it trained with extra atom or bond features, or with another chemprop?")
    atoms = RIGRAtomFeaturizer() if atom == "rigr" else getattr(MultiHotAtomFeaturizer, atom)()
    bonds = RIGRBondFeaturizer() if bond == "rigr" else MultiHotBondFeaturizer()
    return SimpleMoleculeMolGraphFeaturizer(atom_featurizer=atoms, bond_featurizer=bonds), atom


def _build(path: Path, hparams: dict, mp: dict, predictor: dict, state_dict: dict) -> Any:
    """The MPNN from its hyperparameters and weights (training-only parts, the metrics, left out)."""
    from chemprop.models import MPNN

    try:
        parts = {key: dict(spec).pop("cls")(**{k: v for k, v in spec.items() if k != "cls"})
                 for key, spec in (("message_passing", mp), ("agg", dict(hparams["agg"])),
                                   ("predictor", {**predictor, "criterion": None}))}
        kept = {k: hparams[k] for k in ("batch_norm", "X_d_transform") if k in hparams}
        mpnn = MPNN(**parts, **kept)
    except Exception as exc:
        raise ModelError(f"{path}: chemprop could not rebuild the network from its hyperparameters ({exc})") \
            from None
    weights = {k: v for k, v in state_dict.items() if not k.startswith(("metrics.", "predictor.criterion."))}
    missing, unexpected = mpnn.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith(("metrics.", "predictor.criterion."))]
    if missing or unexpected:
        raise ModelError(f"{path}: the weights do not fit the network (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]})")
    return mpnn.eval()
