"""Python entry points for chemists: featurize, load a model, explain molecules, no CLI needed.

>>> from igkit.plugins.molecules import load_model, explain_molecules
>>> model = load_model()                       # the shipped benzene-ring W2N2
>>> [expl], problems = explain_molecules(["c1ccccc1CCO"], model)
>>> expl.atom_attributions, expl.accounting()["bonded_pairs_share"]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rdkit import Chem

from igkit.errors import IGInputError

from .attribution import MoleculeExplanation, explain_graphs
from .checkpoint import MoleculeModel, load_model
from .featurize import Featurization, MolGraph, featurize
from .readers import MoleculeRecord, Problem, parse_smiles, read_molecules, records_from_smiles

Molecules = Sequence[str] | Sequence[Chem.Mol] | Sequence[MoleculeRecord] | str | Path


def featurize_smiles(smiles: str, featurization: Featurization = Featurization()) -> MolGraph:
    """Atom and pair features of one SMILES string (``IGInputError`` with RDKit's reason if invalid)."""
    return featurize(parse_smiles(smiles), featurization)


def as_records(molecules: Molecules, *, smiles_col: str = "smiles", id_col: str | None = None
               ) -> tuple[list[MoleculeRecord], list[Problem]]:
    """SMILES strings, RDKit molecules, records or a file name → records plus unusable rows."""
    if isinstance(molecules, (str, Path)):
        return read_molecules(molecules, smiles_col=smiles_col, id_col=id_col)
    items = list(molecules)
    if all(isinstance(m, MoleculeRecord) for m in items):
        return items, []
    if all(isinstance(m, Chem.Mol) for m in items):
        return [MoleculeRecord(m.GetProp("_Name") if m.HasProp("_Name") else str(k), Chem.MolToSmiles(m), m, k)
                for k, m in enumerate(items, start=1)], []
    if all(isinstance(m, str) for m in items):
        return records_from_smiles(items)
    raise IGInputError("give molecules as SMILES strings, RDKit molecules, records or one file name")


def featurize_records(records: Sequence[MoleculeRecord], featurization: Featurization
                      ) -> tuple[list[MoleculeRecord], list[MolGraph], list[Problem]]:
    """Featurize each record; the ones that cannot be featurized become problems."""
    kept, graphs, problems = [], [], []
    for rec in records:
        try:
            graphs.append(featurize(rec.mol, featurization))
            kept.append(rec)
        except IGInputError as exc:
            problems.append(Problem(rec.row, rec.id, rec.smiles, str(exc)))
    return kept, graphs, problems


def explain_molecules(molecules: Molecules, model: MoleculeModel | str | Path | None = None, *,
                      task: str | int | None = None, score: str = "probability",
                      methods: Sequence[str] = (), show_progress: bool = False, **ig_options: Any
                      ) -> tuple[list[MoleculeExplanation], list[Problem]]:
    """Attribute ``model``'s score (default model: the shipped one) to atoms and pairs of each molecule.

    ``ig_options`` go to :func:`igkit.integrated_gradients` (``steps``, ``method``,
    ``tolerance``, ...); by default integration adapts until completeness is within 1%.
    Returns per-molecule explanations and the inputs that were skipped, with reasons.
    """
    if not isinstance(model, MoleculeModel):
        model = load_model(model)
    records, problems = as_records(molecules)
    records, graphs, more = featurize_records(records, model.featurization)
    explanations, failed = explain_graphs(model, records, graphs, task=task, score=score, methods=methods,
                                          show_progress=show_progress, **ig_options)
    return explanations, problems + more + failed
