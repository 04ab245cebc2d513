"""Reading a Parquet file as rows, a record batch at a time, so memory does not grow with the file.

The columns are checked when the file is opened (before a run starts: a missing column is an
:class:`~igkit.errors.InputFileError` naming the columns there are); the rows come later, as
they are consumed. Cells are given as text (``None`` for a null), like CSV cells.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from igkit.errors import InputFileError

#: rows decoded at a time: bounds memory whatever the file's size
BATCH_ROWS = 4096


def read_parquet_rows(path: str | Path, required: Sequence[tuple[str, str]] = (), columns: Sequence[str] = ()
                      ) -> tuple[list[str], Iterator[tuple[int, dict[str, str | None]]]]:
    """The file's columns and ``(row number from 1, {column: text})`` for each row.

    ``required``: ``(column, the option that named it)`` pairs that must exist; ``columns``:
    which columns to decode (default: the required ones), so other columns cost nothing.
    """
    path = Path(path)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputFileError(f"reading {path} needs pyarrow: pip install pyarrow") from None
    if not path.is_file():
        raise InputFileError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a damaged or foreign file vary
        raise InputFileError(f"{path} is not a readable Parquet file ({exc}); give a .parquet file "
                             f"written by pandas, pyarrow, DuckDB or Spark") from None
    names = list(handle.schema_arrow.names)
    for column, option in required:
        if column not in names:
            raise InputFileError(f"{path} has no column {column!r} ({option}); its columns are "
                                 f"{', '.join(names) or 'none'}")
    wanted = list(dict.fromkeys(columns or [c for c, _ in required]))

    def rows() -> Iterator[tuple[int, dict[str, str | None]]]:
        number = 0
        try:
            for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                for row in batch.to_pylist():
                    number += 1
                    yield number, {k: None if v is None else str(v) for k, v in row.items()}
        except (OSError, ValueError) as exc:  # ValueError: pyarrow.ArrowInvalid in a damaged page
            raise InputFileError(f"{path}, after row {number}: unreadable ({exc})") from None
    return names, rows()
