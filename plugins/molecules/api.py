"""Python entry points for chemists: featurize, explain molecules, no CLI needed.

>>> from igkit.plugins.molecules import explain_molecules
>>> result = explain_molecules(["c1ccccc1CCO"])          # the shipped benzene-ring W2N2
>>> e = result.explanations[0]
>>> e.atom_attributions, e.accounting()["bonded_pairs_share"]

``explain_molecules`` is :func:`igkit.explain` with the ``molecules`` domain (the same
runner, defaults and skip reasons as ``igkit molecules explain``), plus a model
given as a loaded :class:`MoleculeModel` or a checkpoint name. ``explain_graphs`` runs
molecules featurized already through that runner (evaluation and benchmarks featurize once).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from igkit import (Explanation, Integration, Item, Progress, Results, Skipped, content_digest, explain,
                   explain_stream, run_options)

from .attribution import Featurized, check_score
from .checkpoint import MoleculeModel
from .defaults import DEFAULT_BASELINE, DEFAULT_SCORE
from .domain import MoleculesDomain
from .explanation import MoleculeExplanation
from .featurize import Featurization, MolGraph, featurize
from .model_kinds import featurize_each
from .readers import MoleculeInput, MoleculeRecord, Problem, parse_smiles


def featurize_smiles(smiles: str, featurization: Featurization = Featurization()) -> MolGraph:
    """Atom and pair features of one SMILES string (``IGInputError`` with RDKit's reason if invalid)."""
    return featurize(parse_smiles(smiles), featurization)


def featurize_records(records: Sequence[MoleculeRecord], featurization: Featurization
                      ) -> tuple[list[MoleculeRecord], list[MolGraph], list[Problem]]:
    """Featurize each record; the ones that cannot be featurized become problems."""
    return featurize_each(records, lambda mol: featurize(mol, featurization))


def explain_molecules(molecules: Sequence[Any] | str | Path, model: MoleculeModel | str | Path | None = None,
                      *, methods: Sequence[str] = (), integration: dict[str, Any] | None = None,
                      **settings: Any) -> Results:
    """Attribute ``model``'s score (default: the shipped model) to the atoms and pairs of each molecule.

    ``molecules``: SMILES strings, RDKit molecules, or molecule files (``.smi``, ``.sdf``,
    ``.csv``, ``.tsv``). ``settings`` are the explain options (``task``, ``score``, ``baseline``,
    ``max_atoms``, ``smiles_col``, ``id_col``: :class:`~.settings.MoleculeSettings`); ``integration``
    overrides the defaults (``steps``, ``tolerance``, ``max_steps``, ``batch_size``; default: adaptive
    until completeness is within 1%). ``methods`` are other attribution methods computed
    beside IG through the same runner (``occlusion``, ``grad_cam``, ``expected_gradients``,
    ``saliency``, ...; see the README's "Other methods"), in each explanation's ``extra``
    (per atom, per pair) and ``extra_totals`` (per atom, half of each pair folded in).
    Returns :class:`igkit.Results`:
    ``.explanations`` (one :class:`~.explanation.MoleculeExplanation` per molecule, in
    input order) and ``.skipped`` (each with ``source`` and ``reason``).
    """
    if isinstance(model, MoleculeModel) or model is None:
        return explain("molecules", molecules, model=model, methods=methods, integration=integration,
                       **settings)
    return explain("molecules", molecules, model_source=str(model), methods=methods, integration=integration,
                   **settings)


def explain_graphs(model: MoleculeModel, records: Sequence[MoleculeRecord], graphs: Sequence[MolGraph],
                   *, task: str | int | None = None, score: str = DEFAULT_SCORE,
                   baseline: str = DEFAULT_BASELINE, methods: Sequence[str] = (),
                   integration: Integration | None = None, show_progress: bool = False,
                   **integration_options: Any) -> tuple[list[MoleculeExplanation], list[Problem]]:
    """Explain molecules featurized already (``graphs[k]`` of ``records[k]``) through igkit's runner.

    For evaluation and benchmarks, which featurize once and reuse the graphs. Options
    (``steps``, ``tolerance``, ``max_steps``, ``batch_size``, ...) override ``integration``
    (default: the molecules domain's, adaptive to 1%). Returns the explanations in input
    order and the molecules that failed, with reasons.
    """
    domain = MoleculesDomain()
    if integration is not None:
        integration_options = {**vars(integration), **integration_options}
    options = run_options(domain, methods, **integration_options)
    check_score(score)
    model.task_index(task)
    items = []
    for k, (rec, graph) in enumerate(zip(records, graphs)):
        molecule = MoleculeInput(rec.source or f"row {rec.row}", rec.smiles, rec.id, rec.row)
        items.append(Item(molecule.source, Featurized(molecule, graph), rec.id, content_digest("graph", str(k))))
    settings = domain.keyword_settings({"task": task, "score": score, "baseline": baseline})
    position = {item.digest: k for k, item in enumerate(items)}
    found: dict[int, MoleculeExplanation] = {}
    problems: list[Problem] = []
    bar = Progress([], total=len(items), desc="explain molecules", enabled=show_progress)
    for outcome in explain_stream(domain, model, items, settings, options):
        bar.advance()
        if isinstance(outcome, Explanation):
            found[position[outcome.item.digest]] = outcome
        elif isinstance(outcome, Skipped):
            rec = records[position[outcome.item.digest]]
            problems.append(Problem(rec.row, rec.id, rec.smiles, outcome.reason, rec.source))
    bar.close()
    return [found[k] for k in sorted(found)], problems
