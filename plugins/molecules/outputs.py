"""Files written for each molecule, and the tables over a whole run.

Per molecule (into the folder the runner gives, which becomes ``OUT/<id>-<hash>/``):
``atoms.csv``, ``pairs.csv``, ``accounting.json``, ``dead_features.json``,
``molecule.mol`` (the molecule with the atom order of the tables) and the pictures
``atoms.png``/``atoms.svg`` and ``pairs.png``/``pairs.svg``; with ``--methods``, also
``methods.png``: one atom heat map per method side by side. The runner adds
``summary.json`` with :func:`summary_fields`. At the top of ``OUT``: ``atoms.csv``,
``pairs.csv`` and ``accounting.csv`` over every molecule of the run, and the sheet
``methods.png`` (molecules × methods, one colour scale per method), all built from the
item folders' own files, so a resumed run gets them whole.

The atom pictures show ``attribution_with_pairs`` (own features plus half of each
pair), so one picture accounts for the whole score; ``atoms.csv`` also has the
atoms' own share. Each other method gets two columns in ``atoms.csv``, ``<method>``
(own features) and ``<method>_with_pairs``, and one in ``pairs.csv`` (empty for
Grad-CAM, which maps atoms only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from igkit.outputs.explains import describe, shares_mislead
from igkit.io.records import read_json, read_table, write_csv, write_json

from .explanation import MoleculeExplanation, pair_matrix

ACCOUNTING_KEYS = ("score_input", "score_baseline", "difference", "atoms", "bonded_pairs", "non_bonded_pairs",
                   "unexplained", "atoms_share", "bonded_pairs_share", "non_bonded_pairs_share", "shares_note")
#: molecules (rows) on the run's methods.png sheet: the first ones of the run, in folder order
SHEET_MAX_MOLECULES = 8
#: the N×N pair picture is drawn up to this many atoms (beyond it no label is readable, and the
#: matrix alone grows with atoms²); pairs.csv always has every pair
PAIR_PICTURE_MAX_ATOMS = 250


def atom_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom, element, attribution, attribution_with_pairs[, <method>, <method>_with_pairs …]``."""
    extra = [(expl.extra[name][0], expl.extra_totals[name]) for name in expl.extra]
    own, total = expl.atom_attributions, expl.atom_totals
    return [[expl.id, i, atom.GetSymbol(), float(own[i]), float(total[i]),
             *(float(v[i]) for pair in extra for v in pair)]
            for i, atom in enumerate(expl.graph.mol.GetAtoms())]


def pair_rows(expl: MoleculeExplanation) -> list[list]:
    """``molecule, atom_i, atom_j, relation, attribution[, one column per method]`` (empty: the method
    has no pair values)."""
    extra = [pairs for _, pairs in expl.extra.values()]
    values = expl.pair_attributions
    return [[expl.id, int(i), int(j), expl.graph.relations[k], float(values[k]),
             *(float(e[k]) if np.isfinite(e[k]) else "" for e in extra)]
            for k, (i, j) in enumerate(expl.graph.pair_index)]


def headers(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    return (["molecule", "atom", "element", "attribution", "attribution_with_pairs",
             *(c for m in methods for c in (m, f"{m}_with_pairs"))],
            ["molecule", "atom_i", "atom_j", "relation", "attribution", *methods])


def method_title(method: str) -> str:
    """A sheet column's title: what its values are."""
    if method == "integrated_gradients":
        return "integrated_gradients (atom + ½ pairs)"
    if method == "grad_cam":
        return "grad_cam (CAM on the last atom layer, ≥ 0)"
    return f"{method} (atom + ½ pairs)"


def other_scale(expl: MoleculeExplanation) -> dict[str, Any]:
    """The probability beside a logit (or the logit beside a probability); the baseline's only
    for one baseline (the mean of two baselines' logits is no probability's logit)."""
    import math

    fx, fb = expl.score_input, expl.score_baseline
    single = expl.attribution.prepared.context.get("baseline") != "zero+carbon"
    if expl.score == "logit":
        def convert(v: float) -> float:
            return 1 / (1 + math.exp(-v)) if v > -700 else 0.0
        name = "probability"
    else:
        def convert(v: float) -> float:
            return math.log(v / (1 - v)) if 0 < v < 1 else float("nan")
        name = "logit"
    return {"name": name, "input": convert(fx), "baseline": convert(fb) if single else None}


def accounting(expl: MoleculeExplanation) -> dict[str, Any]:
    """The accounting, with shares of ΔF only where they cannot mislead: when |F(x) − F(b)| is small
    against the parts, the shares are null and ``shares_note`` says why (absolute values stand)."""
    found = dict(expl.accounting())
    parts = float(np.abs(expl.atom_attributions).sum() + np.abs(expl.pair_attributions).sum())
    reason = shares_mislead(found["difference"], parts)
    if reason:
        found.update({f"{k}_share": None for k in ("atoms", "bonded_pairs", "non_bonded_pairs")})
        found["shares_note"] = reason
    return found


def caption(expl: MoleculeExplanation) -> tuple[str, list[str]]:
    """A picture's title and the lines under it: what is explained (igkit.outputs.explains)."""
    lines = describe(expl.attribution, other_scale(expl))["lines"]
    title = f"{expl.id[:60]}: attributions to {expl.task} ({expl.score})"
    return title.replace("$", r"\$"), [line.replace("$", r"\$") for line in lines]


def write_molecule(expl: MoleculeExplanation, folder: Path, *, pictures: bool = True) -> list[str]:
    """Everything about one molecule in ``folder``; returns the file names."""
    atom_header, pair_header = headers(list(expl.extra))
    paths = [write_csv(folder / "atoms.csv", atom_header, atom_rows(expl)),
             write_csv(folder / "pairs.csv", pair_header, pair_rows(expl)),
             write_json(folder / "accounting.json", accounting(expl)),
             write_json(folder / "dead_features.json", expl.dead_features),
             _write_molblock(expl, folder / "molecule.mol")]
    if pictures:
        from .render import atom_heatmap_png, atom_heatmap_svg, method_sheet, pair_heatmap

        mol = expl.graph.mol
        title, lines = caption(expl)
        score = expl.attribution.prepared.label
        paths += [atom_heatmap_png(mol, expl.atom_totals, folder / "atoms.png", title, lines, score=score),
                  atom_heatmap_svg(mol, expl.atom_totals, folder / "atoms.svg", title, lines, score=score)]
        if expl.extra:
            names = ["integrated_gradients", *expl.extra]
            values = [expl.atom_totals, *expl.extra_totals.values()]
            paths.append(method_sheet([mol], [values], [method_title(n) for n in names], [expl.id[:60]],
                                      folder / "methods.png", title,
                                      "each method has its own colour scale (±max|value| of this molecule): "
                                      "methods differ in units, compare where each one points, not its colour "
                                      "depth across panels"))
        if expl.graph.n_atoms <= PAIR_PICTURE_MAX_ATOMS:
            paths += pair_heatmap(mol, pair_matrix(expl.graph, expl.pair_attributions),
                                  [folder / "pairs.png", folder / "pairs.svg"], title, lines, score=score)
    return [Path(p).name for p in paths]


def _write_molblock(expl: MoleculeExplanation, path: Path) -> Path:
    """The molecule as a mol block, atoms in the order of atoms.csv (the run sheet redraws it)."""
    from rdkit import Chem

    from igkit.io.records import write_text

    return write_text(path, Chem.MolToMolBlock(expl.graph.mol))


def summary_fields(expl: MoleculeExplanation) -> dict[str, Any]:
    """The molecule's own fields in its ``summary.json``."""
    from rdkit import Chem

    return {"molecule": expl.id, "smiles": expl.smiles, "atoms": expl.graph.n_atoms,
            "pairs": expl.graph.n_pairs, "fragments": len(Chem.GetMolFrags(expl.graph.mol)),
            "featurization": expl.graph.fingerprint, "accounting": accounting(expl),
            "dead_feature_groups": len(expl.dead_features)}


def write_tables(out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
    """``atoms.csv``, ``pairs.csv`` (a ``folder`` column first) and ``accounting.csv`` over every
    finished molecule, read back from their folders, and (``pictures``) the ``methods.png``
    sheet; returns the names written."""
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
    if pictures and folders and _run_settings(out_dir).get("shared_scale"):
        redraw_on_shared_scale(folders)
    if pictures and folders:
        sheet = write_run_sheet(out_dir / "methods.png", folders)
        if sheet is not None:
            written.append(sheet.name)
    return written


def _run_settings(out_dir: Path) -> dict[str, Any]:
    try:
        return read_json(out_dir / "run.json").get("settings", {})
    except Exception:  # noqa: BLE001 - no run.json (a folder written by the Python API): no settings
        return {}


def redraw_on_shared_scale(folders: Sequence[Path]) -> None:
    """``--shared-scale``: every molecule's atom and pair pictures redrawn on the run's largest |value|
    (one scale for atoms, one for pairs), from their own files (so a resumed run's kept molecules
    join the one scale)."""
    from rdkit import Chem

    from igkit.outputs.colours import shared_peak

    from .render import atom_heatmap_png, atom_heatmap_svg, pair_heatmap

    drawn = []
    for folder in folders:
        if not all((folder / f).is_file() for f in ("atoms.csv", "molecule.mol", "summary.json", "atoms.png")):
            continue
        _, table = read_table(folder / "atoms.csv")
        values = np.array([_number(row.get("attribution_with_pairs", "")) for _, row in table])
        mol = Chem.MolFromMolBlock((folder / "molecule.mol").read_text(encoding="utf-8"))
        if mol is not None and mol.GetNumAtoms() == len(values):
            drawn.append((folder, mol, values, read_json(folder / "summary.json")))
    peak = shared_peak([values for _, _, values, _ in drawn])
    pairs = {folder: _pair_matrix(folder / "pairs.csv", mol.GetNumAtoms()) for folder, mol, _, _ in drawn
             if (folder / "pairs.png").is_file()}
    pair_peak = shared_peak(list(pairs.values()))
    for folder, mol, values, summary in drawn:
        explains = summary.get("explains", {})
        title = f"{summary.get('molecule', folder.name)[:60]}: attributions to {summary.get('target', '')}"
        lines = explains.get("lines", [])
        score = summary.get("target") or "the target score"
        atom_heatmap_png(mol, values, folder / "atoms.png", title.replace("$", r"\$"),
                         [line.replace("$", r"\$") for line in lines], peak=peak, score=score)
        atom_heatmap_svg(mol, values, folder / "atoms.svg", title, lines, peak=peak, score=score)
        if folder in pairs:
            pair_heatmap(mol, pairs[folder], [folder / "pairs.png", folder / "pairs.svg"],
                         title.replace("$", r"\$"), [line.replace("$", r"\$") for line in lines], score=score,
                         peak=pair_peak)


def _pair_matrix(path: Path, atoms: int) -> np.ndarray:
    """The symmetric pair matrix of a pairs.csv (NaN: no pair), as the item's pairs.png drew it."""
    matrix = np.full((atoms, atoms), np.nan)
    for _, row in read_table(path)[1]:
        i, j, value = int(row["atom_i"]), int(row["atom_j"]), _number(row["attribution"])
        matrix[i, j] = matrix[j, i] = value
    return matrix


def sheet_methods(header: Sequence[str]) -> list[str]:
    """The methods of an atoms.csv header: IG, then each ``<m>`` that has ``<m>_with_pairs``."""
    return ["integrated_gradients", *(c[:-len("_with_pairs")] for c in header
                                      if c.endswith("_with_pairs") and c != "attribution_with_pairs")]


def write_run_sheet(path: Path, folders: Sequence[Path], limit: int = SHEET_MAX_MOLECULES) -> Path | None:
    """The run's side-by-side sheet from the item folders' ``atoms.csv``, ``molecule.mol`` and
    ``summary.json``: the first ``limit`` molecules × every method, one colour scale per method."""
    from rdkit import Chem

    from .render import method_sheet

    mols, rows, labels, methods = [], [], [], None
    for folder in folders:
        if len(mols) == limit:
            break
        if not ((folder / "atoms.csv").is_file() and (folder / "molecule.mol").is_file()):
            continue
        header, rows_read = read_table(folder / "atoms.csv")
        table = list(rows_read)
        mol = Chem.MolFromMolBlock((folder / "molecule.mol").read_text(encoding="utf-8"))
        if mol is None or mol.GetNumAtoms() != len(table):
            continue
        found = sheet_methods(header)
        methods = methods or found
        columns = [("attribution_with_pairs" if m == "integrated_gradients" else f"{m}_with_pairs") for m in methods]
        values = [np.array([_number(row.get(c, "")) for _, row in table]) for c in columns]
        summary = read_json(folder / "summary.json") if (folder / "summary.json").is_file() else {}
        score = summary.get("score_input", summary.get("accounting", {}).get("score_input"))
        mols.append(mol)
        rows.append(values)
        labels.append(f"{summary.get('molecule', folder.name)[:40]}" + (f" ({score:.3g})" if isinstance(score, float)
                                                                         else ""))
    if not mols:
        return None
    shown = f"the first {len(mols)} of {len(folders)} molecules" if len(folders) > len(mols) else \
        f"all {len(mols)} molecules"
    return method_sheet(mols, rows, [method_title(m) for m in methods], labels, path,
                        f"Attributions per atom, {shown} of the run (score in brackets)",
                        "one colour scale per method (column), shared by every molecule in it: values "
                        "compare down a column, not across columns (methods differ in units)")


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def _typed(cell: str) -> Any:
    """A cell as it was written: a negative number read back is a number again (a string starting
    with "-" would be neutralised as a formula); everything else stays the text it was."""
    if cell[:1] in ("-", "+"):
        try:
            return float(cell)
        except ValueError:
            pass
    return cell
