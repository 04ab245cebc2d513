"""Reading molecules from SMILES strings, ``.smi``, ``.sdf`` and CSV files.

Every reader returns the molecules it could parse *and* a list of problems (row
number, id, reason from RDKit), so one bad row never loses the others.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rdkit import Chem, rdBase

from igkit.errors import IGInputError

_LOG_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")


@dataclass
class MoleculeRecord:
    """One parsed molecule and where it came from (``row`` counts data rows from 1)."""

    id: str
    smiles: str
    mol: Chem.Mol
    row: int
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Problem:
    """A row that could not be used, and why."""

    row: int
    id: str
    text: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.id}): {self.reason} [{self.text[:60]}]"


def parse_smiles(smiles: str) -> Chem.Mol:
    """An RDKit molecule, or ``IGInputError`` carrying RDKit's own reason."""
    text = (smiles or "").strip()
    if not text:
        raise IGInputError("empty SMILES")
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        raise IGInputError(f"invalid SMILES: {_rdkit_reason(capture.messages)}")
    if mol.GetNumAtoms() == 0:
        raise IGInputError("the SMILES has no atoms")
    return mol


def records_from_smiles(smiles: Iterable[str], ids: Iterable[str] | None = None
                        ) -> tuple[list[MoleculeRecord], list[Problem]]:
    """Parse SMILES strings; ids default to the 1-based position."""
    smiles = list(smiles)
    names = list(ids) if ids is not None else [str(k) for k in range(1, len(smiles) + 1)]
    records, problems = [], []
    for row, (text, name) in enumerate(zip(smiles, names), start=1):
        _add(records, problems, row, name, text, {})
    return records, problems


def read_molecules(path: str | Path, *, smiles_col: str = "smiles", id_col: str | None = None
                   ) -> tuple[list[MoleculeRecord], list[Problem]]:
    """Molecules from a ``.smi``, ``.sdf`` or ``.csv`` file (chosen by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise IGInputError(f"molecule file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".smi", ".smiles", ".txt"):
        return _read_smi(path)
    if suffix in (".sdf", ".mol", ".sd"):
        return _read_sdf(path, id_col)
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, smiles_col, id_col, "\t" if suffix == ".tsv" else ",")
    raise IGInputError(f"cannot read molecules from {path.name}: use .smi, .sdf or .csv")


def _add(records: list[MoleculeRecord], problems: list[Problem], row: int, name: str, text: str,
         fields: dict[str, str]) -> None:
    try:
        mol = parse_smiles(text)
    except IGInputError as exc:
        problems.append(Problem(row, name, text, str(exc)))
        return
    records.append(MoleculeRecord(name, text.strip(), mol, row, fields))


def _read_smi(path: Path) -> tuple[list[MoleculeRecord], list[Problem]]:
    records, problems = [], []
    row = 0
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row += 1
        parts = line.split(maxsplit=1)
        name = parts[1].strip() if len(parts) > 1 else str(row)
        _add(records, problems, row, name, parts[0], {})
    return records, problems


def _read_sdf(path: Path, id_col: str | None) -> tuple[list[MoleculeRecord], list[Problem]]:
    records, problems = [], []
    with rdBase.CaptureErrorLog() as capture:
        supplier = Chem.SDMolSupplier(str(path))
        for row in range(1, len(supplier) + 1):
            seen = len(capture.messages)
            mol = supplier[row - 1]
            if mol is None or mol.GetNumAtoms() == 0:
                reason = _rdkit_reason(capture.messages[seen:]) if mol is None else "no atoms"
                problems.append(Problem(row, str(row), "", f"unreadable record: {reason}"))
                continue
            props = {k: str(v) for k, v in mol.GetPropsAsDict().items()}
            name = props.get(id_col) if id_col else (mol.GetProp("_Name") if mol.HasProp("_Name") else "")
            records.append(MoleculeRecord(name or str(row), Chem.MolToSmiles(mol), mol, row, props))
    return records, problems


def _read_csv(path: Path, smiles_col: str, id_col: str | None, delimiter: str
              ) -> tuple[list[MoleculeRecord], list[Problem]]:
    records, problems = [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        columns = reader.fieldnames or []
        for wanted, what in ((smiles_col, "--smiles-col"), (id_col, "--id-col")):
            if wanted is not None and wanted not in columns:
                raise IGInputError(f"{path.name} has no column {wanted!r} ({what}); its columns are "
                                   f"{', '.join(columns)}")
        for row, fields in enumerate(reader, start=1):
            name = fields[id_col] if id_col else str(row)
            _add(records, problems, row, name, fields.get(smiles_col) or "", fields)
    return records, problems


def _rdkit_reason(messages: str) -> str:
    lines = [_LOG_PREFIX.sub("", ln).strip() for ln in messages.splitlines()]
    lines = [ln for ln in lines if ln and not set(ln) <= set("~^ ")]
    return "; ".join(lines[:2]) if lines else "RDKit could not parse it"
