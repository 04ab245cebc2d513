"""Files written by ``igkit molecules explain``: per-molecule folders and combined tables.

The atom pictures show ``attribution_with_pairs`` (own features plus half of
each pair), so one picture accounts for the whole score; ``atoms.csv`` also has
the atoms' own share. Per molecule: ``atoms.csv``, ``pairs.csv``, ``accounting.json``, ``dead_features.json``,
``summary.json``, ``atoms.png``/``atoms.svg`` and ``pairs.png``/``pairs.svg``. At the top:
``atoms.csv``, ``pairs.csv`` and ``accounting.csv`` for all molecules, and
``report.json`` with the rows that were skipped and why.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

from rdkit import Chem

from igkit.explain import safe_name, write_summary
from igkit.progress import progress

from .attribution import MoleculeExplanation, pair_matrix
from .dead_features import dead_feature_groups
from .readers import Problem
from .render import atom_heatmap_png, atom_heatmap_svg, pair_heatmap

ACCOUNTING_KEYS = ("score_input", "score_baseline", "difference", "atoms", "bonded_pairs", "non_bonded_pairs",
                   "unexplained", "atoms_share", "bonded_pairs_share", "non_bonded_pairs_share")


def atom_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom, element, attribution, attribution_with_pairs[, one column per extra method]``."""
    extra = [atoms for atoms, _ in expl.extra.values()]
    own, total = expl.atom_attributions, expl.atom_totals
    return [[expl.id, i, atom.GetSymbol(), _num(own[i]), _num(total[i]), *(_num(e[i]) for e in extra)]
            for i, atom in enumerate(expl.graph.mol.GetAtoms())]


def pair_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom_i, atom_j, relation, attribution[, extra methods]``."""
    extra = [pairs for _, pairs in expl.extra.values()]
    values = expl.pair_attributions
    return [[expl.id, int(i), int(j), expl.graph.relations[k], _num(values[k]), *(_num(e[k]) for e in extra)]
            for k, (i, j) in enumerate(expl.graph.pair_index)]


def _num(value: float) -> str:
    return f"{float(value):.8g}"


def _headers(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    return (["molecule", "atom", "element", "attribution", "attribution_with_pairs", *methods],
            ["molecule", "atom_i", "atom_j", "relation", "attribution", *methods])


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_molecule(expl: MoleculeExplanation, out_dir: Path, *, pictures: bool = True) -> Path:
    """Everything about one molecule in ``out_dir/<id>/``."""
    folder = out_dir / safe_name(expl.id)
    folder.mkdir(parents=True, exist_ok=True)
    atom_header, pair_header = _headers(list(expl.extra))
    _write_csv(folder / "atoms.csv", atom_header, atom_rows(expl))
    _write_csv(folder / "pairs.csv", pair_header, pair_rows(expl))
    accounting = expl.accounting()
    (folder / "accounting.json").write_text(json.dumps(accounting, indent=2) + "\n")
    dead = dead_feature_groups(expl.graph.mol, expl.atom_attributions)
    (folder / "dead_features.json").write_text(json.dumps(dead, indent=2) + "\n")
    mol = expl.graph.mol
    if pictures:
        title = f"{expl.id}: {expl.task} {expl.score} {expl.score_input:.3g}"
        atom_heatmap_png(mol, expl.atom_totals, folder / "atoms.png", title)
        atom_heatmap_svg(mol, expl.atom_totals, folder / "atoms.svg", title)
        matrix = pair_matrix(expl.graph, expl.pair_attributions)
        pair_heatmap(mol, matrix, [folder / "pairs.png", folder / "pairs.svg"], title)
    write_summary(folder, expl.result, target=f"{expl.task} ({expl.score})", seconds=expl.seconds,
                  example=expl.example,
                  extra={"molecule": expl.id, "smiles": expl.smiles, "atoms": expl.graph.n_atoms,
                         "pairs": expl.graph.n_pairs, "fragments": len(Chem.GetMolFrags(mol)),
                         "featurization": expl.graph.fingerprint, "accounting": accounting,
                         "dead_feature_groups": len(dead)})
    return folder


def write_all(explanations: Sequence[MoleculeExplanation], problems: Sequence[Problem], out_dir: Path, *,
              pictures: bool = True, show_progress: bool = False) -> dict[str, Path]:
    """Per-molecule folders plus the combined tables and the report of skipped rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = list(explanations[0].extra) if explanations else []
    atom_header, pair_header = _headers(methods)
    folders = {e.id: write_molecule(e, out_dir, pictures=pictures)
               for e in progress(explanations, desc="write", enabled=show_progress)}
    _write_csv(out_dir / "atoms.csv", atom_header, [r for e in explanations for r in atom_rows(e)])
    _write_csv(out_dir / "pairs.csv", pair_header, [r for e in explanations for r in pair_rows(e)])
    _write_csv(out_dir / "accounting.csv", ["molecule", *ACCOUNTING_KEYS, "completeness_error"],
               [[e.id, *(_num(e.accounting()[k]) for k in ACCOUNTING_KEYS), _num(e.completeness_error)]
                for e in explanations])
    report = {"written": {k: str(v) for k, v in folders.items()},
              "skipped": [{"row": p.row, "molecule": p.id, "input": p.text, "reason": p.reason}
                          for p in problems]}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return folders
