"""Reading users' text files and writing machine-readable outputs, once for every domain.

Input files are UTF-8 with or without a byte-order mark, with LF or CRLF line ends;
anything else is an :class:`~igkit.errors.InputFileError` naming the file and the
line. Line and row numbers are the file's own (1-based, header = line 1). Output
JSON and CSV files are written to a temporary name and renamed, so a reader never
sees half a file; CSV cells that a spreadsheet would run as a formula are neutralised.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import InputFileError

#: what a spreadsheet treats as the start of a formula in a cell
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def read_text(path: str | Path) -> str:
    """The whole file as text: UTF-8 (a BOM is dropped), CRLF read as LF; else a clear error."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputFileError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                             f"save the file as UTF-8 and try again") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every line of a text file (see :func:`read_text`)."""
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        yield number, line


def read_table(path: str | Path, required: Sequence[str] = (), delimiter: str | None = None
               ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """A CSV/TSV file's columns and ``(line number, row)`` pairs; ``required`` columns must exist."""
    path = Path(path)
    text = read_text(path)
    delimiter = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise InputFileError(f"{path} is empty; it needs a header line naming its columns")
    columns = [c.strip() for c in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputFileError(f"{path} has no column {missing[0]!r}; its columns are {', '.join(columns)}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            yield reader.line_num, dict(zip(columns, cells))
    return columns, rows()


def neutralise(cell: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (numbers, also written as text, stay numbers)."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not _is_number(cell):
        return "'" + cell
    return cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_cell(value: Any) -> Any:
    """Floats with 8 significant digits (NumPy scalars too); strings neutralised."""
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{float(value):.8g}"
    if isinstance(value, np.integer):
        return int(value)
    return neutralise(value)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV file, written whole or not at all."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralise(h) for h in header])
    writer.writerows([format_cell(c) for c in row] for row in rows)
    return write_text(path, buffer.getvalue())


def write_json(path: str | Path, data: Any) -> Path:
    """Pretty JSON (NumPy and torch values converted), written whole or not at all."""
    return write_text(path, json.dumps(data, indent=2, default=to_json) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file, or :class:`InputFileError` naming what is wrong with it."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None


def write_text(path: str | Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename: never half a file."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_json(value: Any) -> Any:
    """``json.dumps`` default: arrays and tensors as lists, paths as strings, the rest by repr."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)
