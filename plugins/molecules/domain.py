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

from igkit.cli.commands import positive_int
from igkit.domain import BadItem, Domain, Item, Prepared

from .defaults import BASELINES, DEFAULT_BASELINE, DEFAULT_MAX_ATOMS, DEFAULT_SCORE, SCORES
from .model_kinds import MODEL_KINDS, load_graph_model, model_settings, resolve_model_kind
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
    items_help = ("SMILES strings, or molecule files (.smi, .sdf, .csv, .tsv, .parquet; see --input); "
                  "a SMILES with whitespace in it is refused")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("molecules")
        g.add_argument("--input", default=None,
                       help=".smi, .sdf, .csv, .tsv or .parquet file of molecules (read after any SMILES "
                            "arguments; Parquet is read a batch at a time)")
        g.add_argument("--smiles-col", default="smiles", help="SMILES column of a CSV/TSV input")
        g.add_argument("--id-col", default=None, help="column (CSV) or property (SDF) naming each molecule; without "
                       "it: the SD title, the .smi name, else the SMILES")
        g.add_argument("--task", "--target", dest="task", default=None,
                       help="task name or index of a multitask model; none: the model's first task")
        g.add_argument("--model-kind", choices=MODEL_KINDS, default="auto",
                       help="auto: a .pt/.pth/.ckpt file is a chemprop v2 checkpoint, module:factory with "
                            "--weights a PyTorch Geometric model, anything else an igkit weave checkpoint")
        g.add_argument("--trust-checkpoint", action="store_true",
                       help="unpickle a chemprop checkpoint in full even if it names code beyond chemprop's "
                            "network classes (unpickling can run any code: only for files you trust)")
        g.add_argument("--weights", default=None,
                       help="state-dict file of a PyTorch Geometric model given as --model module:factory")
        g.add_argument("--baseline", choices=BASELINES, default=DEFAULT_BASELINE,
                       help="where the path starts: zero features (the paper's), the carbon skeleton, or "
                            "both averaged (the default: README 'Multi-fragment rules')")
        g.add_argument("--score", choices=SCORES, default=DEFAULT_SCORE,
                       help="explain the class probability or the logit")
        g.add_argument("--shared-scale", action="store_true",
                       help="draw every molecule's atom picture on one colour scale, the run's largest "
                            "|value| (redrawn when the run ends), so colours compare across molecules; "
                            "without it each molecule has its own scale (every legend says which)")
        g.add_argument("--max-atoms", type=positive_int, default=DEFAULT_MAX_ATOMS,
                       help="skip molecules with more heavy atoms than this (checked before featurising; "
                            "every drug-like molecule fits)")

    def sources(self, args: argparse.Namespace) -> list[Any]:
        """SMILES and molecule files as given, then ``--input`` (a file name is no setting: the same
        rows read from another file resume)."""
        return [*args.items, *([args.input] if args.input else [])]

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        """The options as given; a chemprop or PyG model's path starts at zero features (the default
        two-baseline average is the weave network's), so run.json says so."""
        kind = resolve_model_kind(getattr(args, "model", None), getattr(args, "model_kind", "auto"),
                                  getattr(args, "weights", None))
        baseline = args.baseline if kind == "weave" or args.baseline == "carbon" else "zero"
        return {"smiles_col": args.smiles_col, "id_col": args.id_col, "task": args.task,
                "score": args.score, "baseline": baseline, "max_atoms": args.max_atoms,
                **({"shared_scale": True} if getattr(args, "shared_scale", False) else {}),
                **model_settings(args)}

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
