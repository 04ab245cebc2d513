"""The ``molecules`` domain: SMILES (or .smi/.sdf/.csv files) → weave network → atom and pair attributions.

The same domain explains chemprop v2 checkpoints and PyTorch Geometric models (atoms and bonds,
:mod:`.bond_graph`): ``--model`` picks the kind (:mod:`.model_kinds`), and the hooks below hand
such a model's molecules to :mod:`.bond_graph` instead of the weave network's code.

``igkit molecules explain`` and ``igkit explain --domain molecules`` are this one
domain run by igkit's runner: one folder per molecule, combined tables at the top,
resume, report. Heavy modules (RDKit, matplotlib, the network) are imported inside
the methods, so ``igkit --help`` does not load them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.domain import BadItem, Domain, Item, Prepared

from .defaults import DEFAULT_BASELINE, DEFAULT_MAX_ATOMS, DEFAULT_SCORE
from .model_kinds import load_graph_model, resolve_model_kind
from .settings import MoleculeSettings
from igkit.options import Integration

#: the methods ``igkit molecules score-methods`` scores beside integrated gradients when none are named:
#: every method that applies to weave networks and takes seconds for a few hundred molecules
COMPARED_METHODS = ("saliency", "grad_x_input", "smoothgrad", "occlusion", "grad_cam", "expected_gradients",
                    "guided_ig")


#: methods a weave network cannot offer, and why (``--methods`` stops with the reason up front)
UNAVAILABLE_METHODS = {
    **{name: f"{name} is unavailable for molecules: it blurs or segments images ([B, C, H, W]); atom "
             f"and pair features have no pixels" for name in ("blur_ig", "xrai")},
    "guided_backprop": "guided_backprop is unavailable for molecules: the weave modules apply torch.relu "
                       "as a function, which guided backpropagation cannot guide (it only hooks nn.ReLU "
                       "modules), so the result would be a plain gradient there; use saliency for the "
                       "plain gradient",
}


#: what run.json and every caption call the model shipped with igkit, and what its one task means
SHIPPED_MODEL_NAME = "shipped benzene_w2n2 (weave network W2N2, igkit's benzene task)"
SHIPPED_TASK_MEANING = "label 1 = the molecule contains a benzene ring"
#: where each --baseline starts the path, in words for captions
BASELINE_NAMES = {"zero": "all-zero atom and pair features (the paper's)",
                  "carbon": "the carbon skeleton (every atom C, every bond single)",
                  "zero+carbon": "zero features and the carbon skeleton, attributions averaged"}


class MoleculesDomain(Domain):
    name = "molecules"
    description = "SMILES → weave network, chemprop or PyG model; attributions per atom and atom pair or bond"
    integration = Integration()           # adaptive until completeness is within 1%
    max_group = 32                        # molecules of one size bucket per integration call
    unavailable_methods = UNAVAILABLE_METHODS
    settings_class = MoleculeSettings
    items_help = ("SMILES strings, or molecule files (.smi, .sdf, .csv, .tsv, .parquet; see --input); "
                  "a SMILES with whitespace in it is refused")

    def sources(self, args: argparse.Namespace) -> list[Any]:
        """SMILES and molecule files as given, then ``--input`` (a file name is no setting: the same
        rows read from another file resume)."""
        return [*args.items, *([args.input] if args.input else [])]

    def complete_settings(self, settings: dict[str, Any], *, model_source: str | None, methods: Sequence[str],
                          items: Sequence[Any]) -> dict[str, Any]:
        """A chemprop or PyG model's path starts at zero features (the default two-baseline average is
        the weave network's), so run.json says so; a --model-kind that does not fit --model stops here."""
        kind = resolve_model_kind(model_source, settings.get("model_kind", "auto"), settings.get("weights"))
        if kind != "weave" and settings["baseline"] != "carbon":
            return {**settings, "baseline": "zero"}
        return settings

    def load_model(self, source: str | None, *, task: str | int | None = None, score: str = DEFAULT_SCORE,
                   model_kind: str = "auto", trust_checkpoint: bool = False, weights: str | None = None,
                   baseline: str = DEFAULT_BASELINE, **settings: Any):
        from .attribution import check_score
        from .checkpoint import load_model

        kind = resolve_model_kind(source, model_kind, weights)
        if kind != "weave":
            check_score(score)
            return load_graph_model(kind, source, trust_checkpoint=trust_checkpoint, weights=weights, task=task,
                                    baseline=baseline)
        model = load_model(source)
        model.shipped = source is None   # captions name the shipped model's task
        model.task_index(task)   # a wrong --task is one error now, not one skip per molecule
        check_score(score)
        return model

    def model_name(self, model: Any, source: str | None) -> str:
        return source if source else SHIPPED_MODEL_NAME

    def other_scale(self, explanation: Any) -> dict[str, Any] | None:
        from .outputs import other_scale

        if explanation.score == "prediction":     # a regression value has no other scale
            return None
        return other_scale(explanation)

    def model_fingerprint(self, model: Any) -> str:
        from igkit.io.checkpoint import fingerprint_tensors
        from igkit.domain import content_digest

        if getattr(model, "family", "weave") != "weave":
            return content_digest(fingerprint_tensors(model.weights()), model.fingerprint, model.family)[:16]
        return content_digest(fingerprint_tensors(model.net.state_dict()), model.featurization.fingerprint,
                              repr(model.net.config.to_dict()))[:16]

    def read_items(self, sources: Sequence[Any], *, smiles_col: str = "smiles", id_col: str | None = None,
                   **settings: Any) -> Iterable[Item | BadItem]:
        from .readers import Problem, molecule_inputs

        inputs = molecule_inputs(sources, smiles_col=smiles_col, id_col=id_col)

        def items() -> Iterable[Item | BadItem]:
            for entry in inputs:
                if isinstance(entry, Problem):
                    yield BadItem(entry.source, entry.reason)
                else:
                    yield Item(entry.source, entry, entry.name, entry.digest)
        return items()

    def prepare(self, model: Any, value: Any, *, task: str | int | None = None, score: str = DEFAULT_SCORE,
                baseline: str = DEFAULT_BASELINE,
                max_atoms: int = DEFAULT_MAX_ATOMS, **settings: Any) -> Prepared:
        from .attribution import prepare_molecule

        if getattr(model, "family", "weave") != "weave":
            from .bond_graph import describe, prepare

            return describe(prepare(model, value, task=task, score=score, max_atoms=max_atoms), model)
        prepared = prepare_molecule(model, value, task=task, score=score, baseline=baseline, max_atoms=max_atoms)
        task_name = prepared.context["task"]
        prepared.scale = score
        prepared.baseline_name = BASELINE_NAMES.get(baseline, baseline)
        prepared.target_meaning = (f"{score} that task '{task_name}' is 1"
                                   + (f" ({SHIPPED_TASK_MEANING})" if getattr(model, "shipped", False) else ""))
        return prepared

    def collate(self, group: Sequence[Prepared]) -> Prepared:
        from .attribution import collate

        if group[0].context.get("family", "weave") != "weave":
            from .bond_graph import collate as collate_bonds

            return collate_bonds(group)
        return collate(group)

    def method_options(self, method: str, batch: Prepared) -> dict[str, Any]:
        """What ``--methods`` need from a weave network: see :func:`.methods.method_options`.
        The other methods start from the paper's zero features (``--baseline`` is IG's path)."""
        from .methods import method_options

        if batch.context.get("family", "weave") != "weave":
            from .bond_graph import method_options as bond_options

            return {"baselines": None, **bond_options(method, batch)}
        return {"baselines": None, **method_options(method, batch)}

    def explanation(self, attribution: Any):
        from .explanation import MoleculeExplanation

        return MoleculeExplanation(attribution)

    def summary_fields(self, explanation: Any) -> dict[str, Any]:
        from .outputs import summary_fields

        return summary_fields(explanation)

    def write_item(self, explanation: Any, folder: Path, *, pictures: bool = True) -> list[str]:
        from .outputs import write_molecule

        return write_molecule(explanation, folder, pictures=pictures)

    def units(self, explanation: Any) -> list[dict[str, Any]]:
        """One row per atom for ``--format parquet``, as in ``atoms.csv``: its element, its own
        attribution and ``attribution_with_pairs`` (its own plus half of each pair it is in)."""
        own, total = explanation.atom_attributions, explanation.atom_totals
        return [{"unit": i, "label": atom.GetSymbol(), "attribution": float(own[i]),
                 "attribution_with_pairs": float(total[i])}
                for i, atom in enumerate(explanation.graph.mol.GetAtoms())]

    def write_run(self, out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
        from .outputs import write_tables

        return write_tables(out_dir, folders, pictures=pictures)
