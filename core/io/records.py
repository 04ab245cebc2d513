"""Reading users' text files and writing machine-readable outputs, once for every domain.

Input files are UTF-8 with or without a byte-order mark, with LF or CRLF line ends;
anything else is an :class:`~igkit.errors.InputFileError` naming the file and the
line. Line and row numbers are the file's own (1-based, header = line 1). Lines and
tables (:func:`read_lines`, :func:`read_table`) are read as a stream, so memory does not
grow with the file; the whole file is decoded once first, so a bad byte stops a run before
its first row is used. Output JSON and CSV files are written to a temporary name and
renamed, so a reader never sees half a file; CSV cells that a spreadsheet would run as a
formula are neutralised.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from igkit.errors import InputFileError

#: what a spreadsheet treats as the start of a formula in a cell
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: the largest file igkit reads whole (a JSON file), and the largest SD record: 256 MiB
MAX_TEXT_BYTES = 256 * 2**20
#: the longest CSV cell, in characters (Python's csv module's own default limit)
MAX_FIELD_CHARS = 131_072
#: the longest line of a file read as a stream (tables, SMILES, contexts), in characters:
#: a row is held whole, so this bounds the memory of reading any file
MAX_LINE_CHARS = 8 * 2**20


def open_regular(path: str | Path) -> IO[bytes]:
    """The file opened for reading in binary, or an :class:`InputFileError` naming it: only a
    regular file (a named pipe, device or socket would block or never end, so it is refused)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputFileError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputFileError(f"{path} is not a regular file (a pipe, device or socket); save the data "
                             f"to a file and give that")
    return os.fdopen(fd, "rb")


def read_bytes(path: str | Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file (:func:`open_regular`) of at most ``limit`` bytes, or an
    :class:`InputFileError` naming the file and the limit."""
    path = Path(path)
    with open_regular(path) as fh:
        info = os.fstat(fh.fileno())
        if info.st_size > limit:
            raise InputFileError(f"{path} is {info.st_size:,} bytes; igkit reads files of at most "
                                 f"{limit:,} bytes: split it into smaller files")
        chunks, size, want = [], 0, info.st_size + 1  # read(limit + 1) would allocate the whole limit
        while size <= limit and (chunk := fh.read(want)):
            chunks.append(chunk)
            size += len(chunk)
            want = min(1 << 16, limit + 1 - size)  # the end, a file that grows, or /proc's of size 0
        data = b"".join(chunks)
    if len(data) > limit:  # grew while being read
        raise InputFileError(f"{path} is larger than {limit:,} bytes; igkit reads files of at most "
                             f"{limit:,} bytes: split it into smaller files")
    return data


def read_text(path: str | Path, limit: int = MAX_TEXT_BYTES) -> str:
    """The whole file as text: UTF-8 (a BOM is dropped), CRLF read as LF; else a clear error."""
    path = Path(path)
    data = read_bytes(path, limit)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _not_utf8(path, line, data[exc.start]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every line of a text file, the lines :func:`read_text` would
    give, read as a stream: memory holds one line whatever the file's size. The file is checked
    now (a regular file, UTF-8, no line over :data:`MAX_LINE_CHARS` characters), before the
    first line is returned."""
    path = Path(path)
    _check_text(path)
    return enumerate(_stream_lines(path, trailing=True), start=1)


def _check_text(path: Path) -> None:
    """Decode the whole file once, a line at a time: a byte that is not UTF-8 or an overlong
    line is an :class:`InputFileError` naming its line."""
    for _ in _stream_lines(path, trailing=False):
        pass


def _stream_lines(path: Path, trailing: bool) -> Iterator[str]:
    """The file's lines without their line ends (CRLF, LF and CR all end a line); with
    ``trailing``, also the empty line after a final line end, as ``str.split("\\n")`` gives."""
    with open_regular(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None) as text:
        number, ended = 0, True
        try:
            for line in iter(lambda: text.readline(MAX_LINE_CHARS + 1), ""):
                number += 1
                ended = line.endswith("\n")
                if not ended and len(line) > MAX_LINE_CHARS:
                    raise InputFileError(f"{path}, line {number}: longer than {MAX_LINE_CHARS:,} characters; "
                                         f"igkit reads lines of at most that many. Is it a text file with "
                                         f"one row per line?")
                yield line[:-1] if ended else line
        except UnicodeDecodeError:
            raise _locate_not_utf8(path) from None
        if trailing and ended:
            yield ""


def _locate_not_utf8(path: Path) -> InputFileError:
    """The error naming the line and the byte of the first sequence in ``path`` that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open_regular(path) as raw:
        for chunk in itertools.chain(iter(lambda: raw.read(1 << 16), b""), [None]):
            try:
                decoder.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as exc:  # exc.object: the undecoded tail of the last chunk + this one
                return _not_utf8(path, line + exc.object[:exc.start].count(b"\n"), exc.object[exc.start])
            line += (chunk or b"").count(b"\n")
    return InputFileError(f"{path} changed while being read; read it again once it is written")


def _not_utf8(path: Path, line: int, byte: int) -> InputFileError:
    return InputFileError(f"{path}, line {line}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8 "
                          f"and try again")


@dataclass(frozen=True)
class BadRow:
    """A table row that cannot be read: its first line and why. The rows after it still count."""

    line: int
    reason: str


def read_table(path: str | Path, required: Sequence[str] = (), delimiter: str | None = None, *,
               bad_rows: str = "raise") -> tuple[list[str], Iterator[tuple[int, dict[str, str] | BadRow]]]:
    """A CSV/TSV file's columns and ``(line number, row)`` pairs; ``required`` columns must exist.

    The line number is the one the row starts on, also after cells with quoted line breaks.
    A header that names a column twice is refused. A row that cannot be read (a quote never
    closed or followed by stray characters, a cell over :data:`MAX_FIELD_CHARS` characters,
    more cells than columns) raises an :class:`InputFileError` naming its line when it is
    reached, or, with ``bad_rows="yield"``, comes as a :class:`BadRow` in its place and
    reading goes on at the next line. Rows are read as a stream (the file is checked first, see
    :func:`read_lines`): time grows linearly with the file, memory holds one row and at most
    :data:`MAX_FIELD_CHARS` characters looked ahead for a quoted cell.
    """
    if bad_rows not in ("raise", "yield"):
        raise ValueError(f"bad_rows must be 'raise' or 'yield', not {bad_rows!r}")
    path = Path(path)
    _check_text(path)
    lines = _Lines(_stream_lines(path, trailing=False))
    delimiter = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    parsed = _parse_row(lines, 0, delimiter) if lines.get(0) is not None else None
    if parsed is not None and isinstance(parsed[0], BadRow):
        lines.close()
        raise InputFileError(f"{path}, line 1 (the header): {parsed[0].reason}")
    if parsed is None or not any(c.strip() for c in parsed[0]):
        lines.close()
        raise InputFileError(f"{path} is empty; it needs a header line naming its columns")
    columns = [c.strip() for c in parsed[0]]
    missing = [c for c in required if c not in columns]
    try:
        _check_header(path, columns)
        if missing:
            raise InputFileError(f"{path} has no column {missing[0]!r}; its columns are {', '.join(columns)}")
    except InputFileError:
        lines.close()
        raise

    def rows() -> Iterator[tuple[int, dict[str, str] | BadRow]]:
        index = parsed[1]
        with contextlib.closing(lines):
            while lines.get(index) is not None:
                lines.forget_before(index)
                cells, after = _parse_row(lines, index, delimiter)
                row: dict[str, str] | BadRow
                if isinstance(cells, BadRow):
                    row = cells
                elif not any(c.strip() for c in cells):
                    index = after
                    continue
                else:
                    row = _row_of(cells, columns, index + 1)
                if isinstance(row, BadRow) and bad_rows == "raise":
                    raise InputFileError(f"{path}, line {row.line}: {row.reason}")
                yield index + 1, row
                index = after
    return columns, rows()


class _Lines:
    """A stream of lines read by index, keeping only those a row may still need: from the
    first line of the row being read to the furthest line a quoted cell looked at."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._source, self._kept, self._first = lines, [], 0

    def get(self, index: int) -> str | None:
        """Line ``index`` (from 0), None past the end of the file."""
        while index - self._first >= len(self._kept):
            line = next(self._source, None)
            if line is None:
                return None
            self._kept.append(line)
        return self._kept[index - self._first]

    def forget_before(self, index: int) -> None:
        del self._kept[:index - self._first]
        self._first = index

    def close(self) -> None:
        """Close the file now (a table read only for its header)."""
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def _check_header(path: Path, columns: list[str]) -> None:
    seen: dict[str, int] = {}
    for number, name in enumerate(columns, start=1):
        if name and name in seen:
            raise InputFileError(f"{path}: the header names column {name!r} twice (columns {seen[name]} "
                                 f"and {number}); rename one so each column has its own name")
        seen.setdefault(name, number)


def _row_of(cells: list[str], columns: list[str], line: int) -> dict[str, str] | BadRow:
    """The row as a mapping (missing trailing cells read as empty), or why it is refused."""
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
        return BadRow(line, f"the row has {len(cells)} cells but the header names {len(columns)} columns; "
                            f"quote cells that contain {','!r} or fix the row")
    long = next((k for k, c in enumerate(cells[:len(columns)]) if len(c) > MAX_FIELD_CHARS), None)
    if long is not None:
        return BadRow(line, f"the cell in column {columns[long]!r} has {len(cells[long]):,} characters; "
                            f"cells may hold at most {MAX_FIELD_CHARS:,}")
    return dict(zip(columns, cells + [""] * (len(columns) - len(cells))))


def _parse_row(lines: _Lines, start: int, delimiter: str) -> tuple[list[str] | BadRow, int]:
    """The cells of the row that starts at line ``start`` and the index of the line after it;
    a row that cannot be read is a :class:`BadRow`, and reading resumes at the next line."""
    first = lines.get(start)
    if '"' not in first and "\0" not in first:  # the common case: no quoting, one line
        return first.split(delimiter), start + 1
    budget = {"chars": 0}

    def feed() -> Iterator[str]:
        index = start
        while (line := lines.get(index)) is not None:
            if index > start:
                budget["chars"] += len(line) + 1
                if budget["chars"] > MAX_FIELD_CHARS:
                    raise _RowTooLong
            yield line + "\n"
            index += 1

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    old = csv.field_size_limit(MAX_LINE_CHARS + MAX_FIELD_CHARS)
    try:
        cells = next(reader)
    except _RowTooLong:
        return BadRow(start + 1, f"a quote opened on this line is not closed within the next "
                                 f"{MAX_FIELD_CHARS:,} characters; close it, or write a quote meant "
                                 f"literally inside a quoted cell as \"\""), start + 1
    except csv.Error as exc:
        return BadRow(start + 1, _csv_reason(str(exc), start + 1, start + reader.line_num)), start + 1
    finally:
        csv.field_size_limit(old)
    end = start + reader.line_num
    if end - start > 1 and _swallows_rows([lines.get(k) for k in range(start + 1, end)], delimiter, len(cells)):
        return BadRow(start + 1, f"a quote opened on this line closes only on line {end}, taking lines "
                                 f"that look like rows of their own into one cell; close the quote on "
                                 f"line {start + 1} (a quote meant literally is written \"\")"), start + 1
    return cells, end


class _RowTooLong(Exception):
    """A quoted cell runs on past the cell size limit: the quote is almost surely unbalanced."""


def _csv_reason(message: str, line: int, at: int) -> str:
    if "unexpected end of data" in message:
        return "a quote opened on this line is never closed; close it (a quote meant literally is written \"\")"
    if "NUL" in message:
        return "the row contains a NUL byte; is this a text file?"
    if at != line:
        return (f"a quote opened on this line runs on to line {at} and is not a whole cell there; close it "
                f"on this line (a quote meant literally is written \"\")")
    if "expected after" in message:
        return ("a quoted cell is followed by other characters before the next separator; put the whole "
                "cell in quotes and write a quote inside it as \"\"")
    return f"not valid CSV: {message}"


def _swallows_rows(inner: list[str], delimiter: str, cells: int) -> bool:
    """Whether lines inside a quoted cell would each be a whole row: an unbalanced quote, not text."""
    return cells > 1 and all(line.count(delimiter) == cells - 1 for line in inner if line.strip())


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
    """A CSV file, written whole or not at all, a row at a time (a table of every item of a big
    run is never one string in memory)."""
    def write(text: IO[str]) -> None:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([neutralise(h) for h in header])
        writer.writerows([format_cell(c) for c in row] for row in rows)
    return _write_atomically(path, write)


def write_json(path: str | Path, data: Any) -> Path:
    """Pretty JSON (NumPy and torch values converted), written whole or not at all, in pieces
    (``report.json`` of a million items is never one string in memory)."""
    def write(text: IO[str]) -> None:
        chunks = json.JSONEncoder(indent=2, default=to_json).iterencode(data)
        while piece := "".join(itertools.islice(chunks, 4096)):
            text.write(piece)
        text.write("\n")
    return _write_atomically(path, write)


def write_json_rows(path: str | Path, head: dict[str, Any], key: str, rows: Iterable[Any]) -> Path:
    """A JSON object: ``head``'s keys pretty, then ``key`` holding ``rows`` one per line, taken
    from the iterable as they are written (a list of a million rows is never in memory)."""
    def write(text: IO[str]) -> None:
        text.write("{\n")
        for name, value in head.items():
            pretty = json.dumps(value, indent=2, default=to_json).replace("\n", "\n  ")
            text.write(f"  {json.dumps(name)}: {pretty},\n")
        text.write(f"  {json.dumps(key)}: [")
        for number, row in enumerate(rows):
            text.write(("," if number else "") + "\n    " + json.dumps(row, default=to_json))
        text.write("\n  ]\n}\n")
    return _write_atomically(path, write)


def read_json(path: str | Path) -> Any:
    """A JSON file, or :class:`InputFileError` naming what is wrong with it."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputFileError(f"{path}: the JSON is nested too deeply to read") from None
    except ValueError as exc:  # e.g. a number with more digits than Python converts
        raise InputFileError(f"{path}: unreadable JSON ({exc})") from None


def write_text(path: str | Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename: never half a file."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``data`` into ``path``, whole or not at all (see :func:`write_text`)."""
    return _write_atomically(path, lambda text: text.buffer.write(data))


def _write_atomically(path: str | Path, write: Callable[[IO[str]], Any]) -> Path:
    """``write(file)`` into a temporary UTF-8 text file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask as open() does
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def to_json(value: Any) -> Any:
    """``json.dumps`` default: arrays and tensors as lists, paths as strings, the rest by repr."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)
