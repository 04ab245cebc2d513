"""Reading molecules from SMILES strings and ``.smi``, ``.sdf``, ``.csv``/``.tsv`` files, as a stream.

Files go through :mod:`igkit.io.records`: UTF-8 with or without a byte-order mark, LF or
CRLF; any other encoding is an error naming the file and the line, before the first
molecule. Rows (SD records, Parquet record batches) are read as they are used, so memory
does not grow with the file. Each molecule
keeps where it came from in the file's own terms ("mols.csv line 7", "mols.sdf
record 3 (line 25)", "argument 2"), and one bad row never loses the others: it
becomes a :class:`Problem` with its reason.

A SMILES cell that contains whitespace is refused: RDKit would silently read only
the part before the space and take the rest as a name. (In a ``.smi`` file the
format *is* "SMILES, whitespace, name", so there the line is split at its first
whitespace.)
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from igkit.errors import IGInputError, InputFileError
from igkit.io.records import MAX_FIELD_CHARS, MAX_TEXT_BYTES, BadRow, read_lines, read_table

#: file name endings read as molecule files, and the reader each one uses
FILE_KINDS = {".smi": "smi", ".smiles": "smi", ".txt": "smi", ".sdf": "sdf", ".sd": "sdf",
              ".mol": "sdf", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LOG_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class MoleculeInput:
    """One molecule as read, before RDKit sees it: its SMILES (or SD record), id and origin.

    ``id`` is the ``--id-col`` value, the SD record's name or a ``.smi`` line's name, else
    None (the SMILES then names the molecule). ``row`` counts data rows of its source from 1.
    """

    source: str
    smiles: str
    id: str | None = None
    row: int = 0
    molblock: str | None = None
    fields: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.id or self.smiles

    @property
    def digest(self) -> str:
        """The row's content: SMILES (or the SD record) and id. Equal rows are one molecule."""
        from igkit.domain import content_digest

        return content_digest("molecule", self.molblock or self.smiles, self.id or "")


@dataclass
class Problem:
    """A row that could not be used, and why."""

    row: int
    id: str
    text: str
    reason: str
    source: str = ""

    def __str__(self) -> str:
        from igkit.outputs.printable import printable

        where = printable(self.source or f"row {self.row}")
        name = f" ({printable(self.id, 60)})" if self.id else ""
        return f"{where}{name}: {printable(self.reason, 1000)}" + (
            f" [{printable(self.text, 60)}]" if self.text else "")


@dataclass
class MoleculeRecord:
    """One parsed molecule and where it came from (``row`` counts data rows from 1)."""

    id: str
    smiles: str
    mol: Any
    row: int
    fields: dict[str, str] = field(default_factory=dict)
    source: str = ""


def smiles_problem(text: str) -> str | None:
    """Why a SMILES cell cannot be used as it stands (empty, or whitespace inside), else None."""
    text = (text or "").strip()
    if not text:
        return "empty SMILES"
    if len(text) > MAX_FIELD_CHARS:
        return f"the SMILES has {len(text):,} characters; igkit reads SMILES of at most {MAX_FIELD_CHARS:,}"
    if _SPACE.search(text):
        head = _SPACE.split(text, maxsplit=1)[0]
        return (f"the SMILES {text[:60]!r} contains whitespace; RDKit would read only {head[:40]!r} and "
                f"take the rest as a name. Remove the whitespace (or put names in --id-col)")
    return None


def parse_smiles(smiles: str) -> Any:
    """An RDKit molecule, or ``IGInputError`` carrying RDKit's own reason."""
    from rdkit import Chem, rdBase

    problem = smiles_problem(smiles)
    if problem:
        raise IGInputError(problem)
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise IGInputError(f"invalid SMILES: {_rdkit_reason(capture.messages)}")
    if mol.GetNumAtoms() == 0:
        raise IGInputError("the SMILES has no atoms")
    return mol


def parse_input(molecule: MoleculeInput) -> Any:
    """The RDKit molecule of an input (from its SD record when it has one)."""
    if molecule.molblock is None:
        return parse_smiles(molecule.smiles)
    from rdkit import Chem, rdBase

    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromMolBlock(molecule.molblock)
    if mol is None:
        raise IGInputError(f"unreadable SD record: {_rdkit_reason(capture.messages)}")
    return mol


def is_molecule_file(text: str) -> bool:
    """Whether a command-line item names a molecule file (no SMILES ends in .csv, .smi, .sdf, ...)."""
    return isinstance(text, (str, Path)) and Path(text).suffix.lower() in FILE_KINDS


def read_inputs(path: str | Path, *, smiles_col: str = "smiles", id_col: str | None = None
                ) -> Iterator[MoleculeInput | Problem]:
    """The molecules of one file, as they are read. The file, its encoding and its columns are
    checked now (an :class:`InputFileError` before anything runs); rows come one by one."""
    path = Path(path)
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputFileError(f"cannot read molecules from {path}: use .smi, .sdf, .csv, .tsv or .parquet")
    if not path.exists():
        raise InputFileError(f"molecule file {path} does not exist")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a molecule file")
    if kind == "smi":
        return _smi_inputs(path)
    if kind == "sdf":
        return _sdf_inputs(path, id_col)
    if kind == "parquet":
        return _parquet_inputs(path, smiles_col, id_col)
    return _csv_inputs(path, smiles_col, id_col)


def argument_inputs(smiles: Iterable[str], start: int = 1) -> Iterator[MoleculeInput | Problem]:
    """SMILES given as arguments ("argument 1", ...)."""
    for number, text in enumerate(smiles, start=start):
        yield _checked(f"argument {number}", number, str(text), None, {})


def mol_input(mol: Any, number: int) -> MoleculeInput:
    """An RDKit molecule handed over in Python ("molecule N"), kept with its own atom order."""
    from rdkit import Chem

    name = mol.GetProp("_Name") if mol.HasProp("_Name") and mol.GetProp("_Name").strip() else None
    return MoleculeInput(f"molecule {number}", Chem.MolToSmiles(mol), name, number, Chem.MolToMolBlock(mol))


def _checked(source: str, row: int, text: str, name: str | None, fields: dict[str, str]
             ) -> MoleculeInput | Problem:
    problem = smiles_problem(text)
    if problem:
        return Problem(row, name or "", text, problem, source)
    return MoleculeInput(source, text.strip(), name or None, row, None, fields)


def _smi_inputs(path: Path) -> Iterator[MoleculeInput | Problem]:
    lines = read_lines(path)   # checked now (an encoding error stops the run before it starts), read later

    def stream() -> Iterator[MoleculeInput | Problem]:
        row = 0
        for number, line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            row += 1
            parts = line.strip().split(maxsplit=1)
            name = parts[1].strip() if len(parts) > 1 else None
            yield _checked(f"{path} line {number}", row, parts[0], name, {})
    return stream()


def _parquet_inputs(path: Path, smiles_col: str, id_col: str | None) -> Iterator[MoleculeInput | Problem]:
    """A Parquet file's rows, a record batch at a time (memory does not grow with the file)."""
    from igkit.io.parquet_input import read_parquet_rows

    required = [(smiles_col, "--smiles-col"), *([(id_col, "--id-col")] if id_col else [])]
    _, rows = read_parquet_rows(path, required)

    def stream() -> Iterator[MoleculeInput | Problem]:
        for row, fields in rows:
            name = (fields.get(id_col) or "").strip() if id_col else None
            yield _checked(f"{path} row {row}", row, fields.get(smiles_col) or "", name, {})
    return stream()


def _csv_inputs(path: Path, smiles_col: str, id_col: str | None) -> Iterator[MoleculeInput | Problem]:
    columns, rows = read_table(path, bad_rows="yield")
    for wanted, option in ((smiles_col, "--smiles-col"), (id_col, "--id-col")):
        if wanted is not None and wanted not in columns:
            raise InputFileError(f"{path} has no column {wanted!r} ({option}); its columns are "
                                 f"{', '.join(columns)}")

    def stream() -> Iterator[MoleculeInput | Problem]:
        for row, (line, fields) in enumerate(rows, start=1):
            if isinstance(fields, BadRow):
                yield Problem(row, "", "", fields.reason, f"{path} line {line}")
                continue
            name = (fields.get(id_col) or "").strip() if id_col else None
            yield _checked(f"{path} line {line}", row, fields.get(smiles_col) or "", name, fields)
    return stream()


def _sdf_inputs(path: Path, id_col: str | None) -> Iterator[MoleculeInput | Problem]:
    blocks = _sd_blocks(path)
    first = next(blocks, None)
    if first is None:
        raise InputFileError(f"{path} holds no molecules: an SD file is mol blocks, each ending in a "
                             f"'$$$$' line")
    blocks = itertools.chain([first], blocks)

    def stream() -> Iterator[MoleculeInput | Problem]:
        from rdkit import Chem, rdBase

        for record, (line, block) in enumerate(blocks, start=1):
            source = f"{path} record {record} (line {line})"
            text = "\n".join(block) + "\n"
            with rdBase.CaptureErrorLog() as capture:
                supplier = Chem.SDMolSupplier()
                supplier.SetData(text)
                mol = supplier[0] if len(supplier) else None
            if mol is None or mol.GetNumAtoms() == 0:
                reason = _rdkit_reason(capture.messages) if mol is None else "no atoms"
                yield Problem(record, "", "", f"unreadable SD record: {reason}", source)
                continue
            props = {k: str(v) for k, v in mol.GetPropsAsDict().items()}
            title = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
            name = props.get(id_col) or title if id_col else title
            end = next((k for k, ln in enumerate(block) if ln.startswith("M  END")), len(block) - 1)
            yield MoleculeInput(source, Chem.MolToSmiles(mol), (name or "").strip() or None, record,
                                "\n".join(block[:end + 1]) + "\n", props)
    return stream()


def _sd_blocks(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The records of an SD file as they are read, each with the line it starts on (a last
    record without its '$$$$' line too); one record of more than MAX_TEXT_BYTES is an error."""
    current: list[str] = []
    start, size = 1, 0
    for number, line in read_lines(path):
        if not current:
            start, size = number, 0
        current.append(line)
        size += len(line) + 1
        if size > MAX_TEXT_BYTES:
            raise InputFileError(f"{path}, line {start}: an SD record longer than {MAX_TEXT_BYTES:,} "
                                 f"characters; does every record end with a '$$$$' line?")
        if line.strip() == "$$$$":
            yield start, current
            current = []
    if any(line.strip() for line in current):
        yield start, current + ["$$$$"]


def molecule_inputs(sources: Sequence[Any], *, smiles_col: str = "smiles", id_col: str | None = None
                    ) -> Iterator[MoleculeInput | Problem]:
    """Arguments (SMILES, file names or RDKit molecules) in order; files are checked before the
    first molecule is returned."""
    streams: list[Iterator[MoleculeInput | Problem]] = []
    for number, source in enumerate(sources, start=1):
        if is_molecule_file(source):
            streams.append(read_inputs(source, smiles_col=smiles_col, id_col=id_col))
        elif hasattr(source, "GetNumAtoms"):
            streams.append(iter([mol_input(source, number)]))
        else:
            streams.append(argument_inputs([source], start=number))
    return (entry for stream in streams for entry in stream)


def records_from_inputs(inputs: Iterable[MoleculeInput | Problem]) -> tuple[list[MoleculeRecord], list[Problem]]:
    """Parse every input with RDKit: records plus the rows that could not be used."""
    records, problems = [], []
    for entry in inputs:
        if isinstance(entry, Problem):
            problems.append(entry)
            continue
        name = entry.id or str(entry.row)
        try:
            mol = parse_input(entry)
        except IGInputError as exc:
            problems.append(Problem(entry.row, name, entry.smiles, str(exc), entry.source))
            continue
        records.append(MoleculeRecord(name, entry.smiles, mol, entry.row, dict(entry.fields), entry.source))
    return records, problems


def records_from_smiles(smiles: Iterable[str], ids: Iterable[str] | None = None
                        ) -> tuple[list[MoleculeRecord], list[Problem]]:
    """Parse SMILES strings; ids default to the 1-based position."""
    smiles = list(smiles)
    names = list(ids) if ids is not None else [None] * len(smiles)
    inputs = [_checked(f"argument {k}", k, text, name, {})
              for k, (text, name) in enumerate(zip(smiles, names), start=1)]
    return records_from_inputs(inputs)


def read_molecules(path: str | Path, *, smiles_col: str = "smiles", id_col: str | None = None
                   ) -> tuple[list[MoleculeRecord], list[Problem]]:
    """Molecules from a ``.smi``, ``.sdf`` or ``.csv``/``.tsv`` file (chosen by suffix), parsed."""
    return records_from_inputs(read_inputs(path, smiles_col=smiles_col, id_col=id_col))


def _rdkit_reason(messages: str) -> str:
    lines = [_LOG_PREFIX.sub("", ln).strip() for ln in messages.splitlines()]
    lines = [ln for ln in lines if ln and not set(ln) <= set("~^ ")]
    return "; ".join(lines[:2]) if lines else "RDKit could not parse it"
