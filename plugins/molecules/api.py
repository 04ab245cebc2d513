"""Python entry points for chemists: featurize, explain molecules, no CLI needed.

>>> from igkit.plugins.molecules import explain_molecules
>>> result = explain_molecules(["c1ccccc1CCO"])          # the shipped benzene-ring W2N2
>>> e = result.explanations[0]
>>> e.atom_attributions, e.accounting()["bonded_pairs_share"]

``explain_molecules`` is :func:`igkit.explain` with the ``molecules`` domain (the same
runner, defaults and skip reasons as ``igkit molecules explain``), plus a model
given as a loaded :class:`MoleculeModel` or a checkpoint name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from igkit import Explanations, explain
from igkit.errors import IGInputError

from .checkpoint import MoleculeModel
from .featurize import Featurization, MolGraph, featurize
from .readers import MoleculeRecord, Problem, parse_smiles


def featurize_smiles(smiles: str, featurization: Featurization = Featurization()) -> MolGraph:
    """Atom and pair features of one SMILES string (``IGInputError`` with RDKit's reason if invalid)."""
    return featurize(parse_smiles(smiles), featurization)


def featurize_records(records: Sequence[MoleculeRecord], featurization: Featurization
                      ) -> tuple[list[MoleculeRecord], list[MolGraph], list[Problem]]:
    """Featurize each record; the ones that cannot be featurized become problems."""
    kept, graphs, problems = [], [], []
    for rec in records:
        try:
            graphs.append(featurize(rec.mol, featurization))
            kept.append(rec)
        except IGInputError as exc:
            problems.append(Problem(rec.row, rec.id, rec.smiles, str(exc), rec.source))
    return kept, graphs, problems


def explain_molecules(molecules: Sequence[Any] | str | Path, model: MoleculeModel | str | Path | None = None,
                      *, methods: Sequence[str] = (), integration: dict[str, Any] | None = None,
                      **settings: Any) -> Explanations:
    """Attribute ``model``'s score (default: the shipped model) to the atoms and pairs of each molecule.

    ``molecules``: SMILES strings, RDKit molecules, or molecule files (``.smi``, ``.sdf``,
    ``.csv``, ``.tsv``). ``settings`` are the explain options (``task``, ``score``,
    ``max_atoms``, ``smiles_col``, ``id_col``, ``input``); ``integration`` overrides the
    defaults (``steps``, ``tolerance``, ``max_steps``, ``batch_size``; default: adaptive
    until completeness is within 1%). ``methods`` are other attribution methods computed
    beside IG through the same runner (``occlusion``, ``grad_cam``, ``expected_gradients``,
    ``saliency``, ...; see the README's "Other methods"), in each explanation's ``extra``
    (per atom, per pair) and ``extra_totals`` (per atom, half of each pair folded in).
    Returns :class:`igkit.Explanations`:
    ``.explanations`` (one :class:`~.attribution.MoleculeExplanation` per molecule, in
    input order) and ``.skipped`` (each with ``source`` and ``reason``).
    """
    if isinstance(model, MoleculeModel) or model is None:
        return explain("molecules", molecules, model=model, methods=methods, integration=integration,
                       **settings)
    return explain("molecules", molecules, model_source=str(model), methods=methods, integration=integration,
                   **settings)
