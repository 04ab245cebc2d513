"""Files written for each molecule, and the tables over a whole run.

Per molecule (into the folder the runner gives, which becomes ``OUT/<id>-<hash>/``):
``atoms.csv``, ``pairs.csv``, ``accounting.json``, ``dead_features.json`` and the
pictures ``atoms.png``/``atoms.svg`` and ``pairs.png``/``pairs.svg``; the runner adds
``summary.json`` with :func:`summary_fields`. At the top of ``OUT``: ``atoms.csv``,
``pairs.csv`` and ``accounting.csv`` over every molecule of the run, built from the
item folders' own files, so a resumed run gets them whole.

The atom pictures show ``attribution_with_pairs`` (own features plus half of each
pair), so one picture accounts for the whole score; ``atoms.csv`` also has the
atoms' own share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from igkit.records import read_json, read_table, write_csv, write_json

from .attribution import MoleculeExplanation, pair_matrix

ACCOUNTING_KEYS = ("score_input", "score_baseline", "difference", "atoms", "bonded_pairs", "non_bonded_pairs",
                   "unexplained", "atoms_share", "bonded_pairs_share", "non_bonded_pairs_share")
#: the N×N pair picture is drawn up to this many atoms (beyond it no label is readable, and the
#: matrix alone grows with atoms²); pairs.csv always has every pair
PAIR_PICTURE_MAX_ATOMS = 250


def atom_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom, element, attribution, attribution_with_pairs[, one column per extra method]``."""
    extra = [atoms for atoms, _ in expl.extra.values()]
    own, total = expl.atom_attributions, expl.atom_totals
    return [[expl.id, i, atom.GetSymbol(), float(own[i]), float(total[i]), *(float(e[i]) for e in extra)]
            for i, atom in enumerate(expl.graph.mol.GetAtoms())]


def pair_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom_i, atom_j, relation, attribution[, extra methods]``."""
    extra = [pairs for _, pairs in expl.extra.values()]
    values = expl.pair_attributions
    return [[expl.id, int(i), int(j), expl.graph.relations[k], float(values[k]), *(float(e[k]) for e in extra)]
            for k, (i, j) in enumerate(expl.graph.pair_index)]


def headers(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    return (["molecule", "atom", "element", "attribution", "attribution_with_pairs", *methods],
            ["molecule", "atom_i", "atom_j", "relation", "attribution", *methods])


def write_molecule(expl: MoleculeExplanation, folder: Path, *, pictures: bool = True) -> list[str]:
    """Everything about one molecule in ``folder``; returns the file names."""
    atom_header, pair_header = headers(list(expl.extra))
    paths = [write_csv(folder / "atoms.csv", atom_header, atom_rows(expl)),
             write_csv(folder / "pairs.csv", pair_header, pair_rows(expl)),
             write_json(folder / "accounting.json", expl.accounting()),
             write_json(folder / "dead_features.json", expl.dead_features)]
    if pictures:
        from .render import atom_heatmap_png, atom_heatmap_svg, pair_heatmap

        mol = expl.graph.mol
        title = f"{expl.id[:60]}: {expl.task} {expl.score} {expl.score_input:.3g}".replace("$", r"\$")
        paths += [atom_heatmap_png(mol, expl.atom_totals, folder / "atoms.png", title),
                  atom_heatmap_svg(mol, expl.atom_totals, folder / "atoms.svg", title)]
        if expl.graph.n_atoms <= PAIR_PICTURE_MAX_ATOMS:
            paths += pair_heatmap(mol, pair_matrix(expl.graph, expl.pair_attributions),
                                  [folder / "pairs.png", folder / "pairs.svg"], title)
    return [Path(p).name for p in paths]


def summary_fields(expl: MoleculeExplanation) -> dict[str, Any]:
    """The molecule's own fields in its ``summary.json``."""
    from rdkit import Chem

    return {"molecule": expl.id, "smiles": expl.smiles, "atoms": expl.graph.n_atoms,
            "pairs": expl.graph.n_pairs, "fragments": len(Chem.GetMolFrags(expl.graph.mol)),
            "featurization": expl.graph.fingerprint, "accounting": expl.accounting(),
            "dead_feature_groups": len(expl.dead_features)}


def write_tables(out_dir: Path, folders: Sequence[Path]) -> list[str]:
    """``atoms.csv``, ``pairs.csv`` (a ``folder`` column first) and ``accounting.csv`` over every
    finished molecule, read back from their folders; returns the names written."""
    written = []
    for name in ("atoms.csv", "pairs.csv"):
        header: list[str] | None = None
        rows: list[list[Any]] = []
        for folder in folders:
            if not (folder / name).is_file():
                continue
            columns, table = read_table(folder / name)
            header = header or columns
            rows += [[folder.name, *(_typed(row.get(c, "")) for c in header)] for _, row in table]
        if header is not None:
            written.append(write_csv(out_dir / name, ["folder", *header], rows).name)
    accounting = []
    for folder in folders:
        summary = read_json(folder / "summary.json")
        if "accounting" in summary:
            accounting.append([folder.name, summary.get("molecule", ""),
                               *(summary["accounting"].get(k) for k in ACCOUNTING_KEYS),
                               summary.get("completeness_error")])
    if folders:
        written.append(write_csv(out_dir / "accounting.csv",
                                 ["folder", "molecule", *ACCOUNTING_KEYS, "completeness_error"], accounting).name)
    return written


def _typed(cell: str) -> Any:
    """A cell as it was written: a negative number read back is a number again (a string starting
    with "-" would be neutralised as a formula); everything else stays the text it was."""
    if cell[:1] in ("-", "+"):
        try:
            return float(cell)
        except ValueError:
            pass
    return cell
