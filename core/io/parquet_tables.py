"""``--format parquet``: the run as two Parquet tables a data scientist can read with pandas.

``OUT/items/`` has one row per input (in input order: written, kept, duplicate and
skipped items alike) and ``OUT/units/`` one row per unit of each explained item (an
atom, a word, an image patch: :meth:`igkit.domain.Domain.units`). Both are built at the
end of a run from the item folders (``summary.json`` and ``units.json``), so a resumed
run gets them whole, streamed in row groups so memory stays bounded. Columns are
listed in :data:`ITEM_COLUMNS` and :data:`UNIT_COLUMNS` (README, "Run contract");
the schema version is in each file's metadata (``igkit_schema_version``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from igkit.errors import IGInputError, OutputError
from igkit.io.records import read_json
from igkit.run.report import RunReport
from igkit.run.run_layout import PARTIAL_PREFIX, UNITS_FILE

#: the version of the columns below; raised when a column changes meaning or type
PARQUET_SCHEMA_VERSION = 1
#: ``OUT/items/``: column → Arrow type name (summary key in ``_FROM_SUMMARY``)
ITEM_COLUMNS = {"item": "string", "source": "string", "digest": "string", "folder": "string",
                "status": "string", "kind": "string", "reason": "string", "target": "string",
                "prediction": "float64", "baseline_prediction": "float64", "attribution_sum": "float64",
                "completeness_error": "float64", "converged": "bool_", "steps": "int64",
                "seconds": "float64"}
#: ``OUT/units/``: the columns every domain has; a domain may add numeric ones
#: (molecules: ``attribution_with_pairs``)
UNIT_COLUMNS = {"item": "string", "digest": "string", "unit": "int64", "label": "string",
                "attribution": "float64"}
_FROM_SUMMARY = {"prediction": "score_input", "baseline_prediction": "score_baseline",
                 "attribution_sum": "attribution_sum", "completeness_error": "completeness_error",
                 "converged": "converged", "steps": "steps", "seconds": "seconds"}
#: items per row group: bounds the memory of a run of any size
_ROWS_PER_GROUP = 2000


def require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise IGInputError("--format parquet needs pyarrow: pip install pyarrow") from None


def write_tables(report: RunReport) -> list[str]:
    """Write ``OUT/items/part-0.parquet`` and ``OUT/units/part-0.parquet``; return their folders."""
    try:
        _write(report.out, "items", _item_rows(report), ITEM_COLUMNS)
        _write(report.out, "units", _unit_rows(report), UNIT_COLUMNS)
    except OSError as exc:
        raise OutputError(f"cannot write the Parquet tables in {report.out}: {exc.strerror or exc}; "
                          f"finished items are kept, rerun to write them") from None
    return ["items", "units"]


def _summary(folder: Path) -> dict[str, Any]:
    summary = read_json(folder / "summary.json")
    if not isinstance(summary, dict):
        raise OutputError(f"{folder / 'summary.json'} is damaged (not a JSON object); rerun with "
                          f"--overwrite to recompute the run")
    return summary


def _item_rows(report: RunReport) -> Iterator[dict[str, Any]]:
    for entry in report.ordered():
        row = {"source": entry["source"], "digest": entry.get("digest"), "folder": entry.get("folder"),
               "status": entry["status"], "kind": entry.get("kind"), "reason": entry.get("reason")}
        if entry.get("folder"):
            summary = _summary(report.out / entry["folder"])
            target = summary.get("target")
            row.update(item=summary["item"]["name"],
                       target=None if target is None else target if isinstance(target, str)
                       else json.dumps(target),
                       **{column: summary.get(key) for column, key in _FROM_SUMMARY.items()})
        yield row


def _unit_rows(report: RunReport) -> Iterator[dict[str, Any]]:
    for entry in report.ordered():
        if entry["status"] not in ("written", "kept"):
            continue  # a duplicate's units are its first copy's
        folder = report.out / entry["folder"]
        name = _summary(folder)["item"]["name"]
        units = read_json(folder / UNITS_FILE)
        if not isinstance(units, list):
            raise OutputError(f"{folder / UNITS_FILE} is damaged (not a list); rerun with --overwrite")
        for unit in units:
            yield {"item": name, "digest": entry["digest"], **unit}


def _write(out: Path, name: str, rows: Iterator[dict[str, Any]], columns: dict[str, str]) -> None:
    """Stream ``rows`` into ``OUT/<name>/part-0.parquet`` (built aside, then swapped in)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = out / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    writer, schema, chunk = None, None, []
    try:
        for row in _with_end(rows):
            if row is not None:
                chunk.append(row)
            if chunk and (row is None or len(chunk) >= _ROWS_PER_GROUP):
                if schema is None:
                    schema = _schema(columns, chunk[0])
                    writer = pq.ParquetWriter(partial / "part-0.parquet", schema)
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                chunk = []
        if writer is None:  # no rows: an empty table with the declared columns
            schema = _schema(columns, {})
            writer = pq.ParquetWriter(partial / "part-0.parquet", schema)
            writer.write_table(schema.empty_table())
        writer.close()
        final = out / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _with_end(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any] | None]:
    """The rows, then ``None`` (flush the last row group)."""
    yield from rows
    yield None


def _schema(columns: dict[str, str], first: dict[str, Any]) -> Any:
    """The declared columns, then a domain's extra unit columns (numbers) in its own order."""
    import pyarrow as pa

    fields = [pa.field(n, getattr(pa, t)()) for n, t in columns.items()]
    fields += [pa.field(n, pa.float64()) for n in first if n not in columns]
    return pa.schema(fields, metadata={"igkit_schema_version": str(PARQUET_SCHEMA_VERSION)})
