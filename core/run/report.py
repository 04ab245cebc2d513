"""What happened to every input of a run (``report.json``), kept on disk as the run goes.

A run of a million inputs has a million report entries. They live in a private SQLite
database (a temporary file SQLite deletes when the report is closed or collected), so the
driver's memory does not grow with the input, and ``report.json`` is written from it one
entry at a time, in input order.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import tempfile
import weakref
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from igkit.domain import Item
from igkit.errors import OutputError
from igkit.io.records import to_json, write_json_rows
from igkit.run.engines import written_entry
from igkit.run.run_layout import SCHEMA_VERSION

#: the statuses an entry can have, in the order ``counts`` lists them
STATUSES = ("written", "kept", "duplicate", "skipped")

_TABLES = """
    PRAGMA journal_mode = OFF;
    PRAGMA synchronous = OFF;
    CREATE TABLE inputs (source TEXT PRIMARY KEY, position INTEGER NOT NULL);
    CREATE TABLE entries (source TEXT NOT NULL, status TEXT NOT NULL, digest TEXT, folder TEXT,
                          entry TEXT NOT NULL);
    CREATE INDEX entries_by_digest ON entries (digest);
    CREATE TABLE firsts (digest TEXT PRIMARY KEY, source TEXT NOT NULL);
    CREATE TABLE duplicates (source TEXT NOT NULL, digest TEXT NOT NULL, first_source TEXT NOT NULL);
"""
#: the entries in input order (an entry whose source was never read as an input comes last)
_IN_ORDER = """SELECT entries.entry FROM entries LEFT JOIN inputs ON inputs.source = entries.source
               {where} ORDER BY inputs.position IS NULL, inputs.position, entries.rowid"""


class RunReport:
    """Every input of a run → its folder, or why it has none; mirrors ``report.json``."""

    def __init__(self, out: Path, run: dict[str, Any]) -> None:
        self.out, self.run = out, run
        self.status = "running"
        self.run_files: list[str] = []
        self.engine: dict[str, Any] = {}
        self._counts: Counter[str] = Counter()
        self._inputs = 0
        with self._room():
            self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            self._db.executescript(_TABLES)
        weakref.finalize(self, self._db.close)  # closed, and its file deleted, with the report

    @staticmethod
    @contextlib.contextmanager
    def _room() -> Iterator[None]:
        """A temporary folder that is full or unwritable stops the run with what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OutputError(f"cannot keep the run's report in a temporary file ({exc}); make room in "
                              f"{tempfile.gettempdir()} or set TMPDIR to a folder with room, then rerun "
                              f"the same command to resume (finished items are kept)") from None

    # ------------------------------------------------------------------ recording, by the driver
    def note_input(self, source: str) -> None:
        """``source`` was read (its place in the input order; a repeated source keeps its first)."""
        with self._room():
            self._db.execute("INSERT OR IGNORE INTO inputs VALUES (?, ?)", (source, self._inputs))
        self._inputs += 1

    def first_copy(self, item: Item) -> str | None:
        """The source of an earlier input with ``item``'s content, or None (``item`` is the first)."""
        with self._room():
            if self._db.execute("INSERT OR IGNORE INTO firsts VALUES (?, ?)", (item.digest, item.source)).rowcount:
                return None
            return self._db.execute("SELECT source FROM firsts WHERE digest = ?", (item.digest,)).fetchone()[0]

    def add_duplicate(self, item: Item, first_source: str) -> None:
        """``item`` repeats ``first_source``'s content; its entry is settled by :meth:`resolve_duplicates`."""
        with self._room():
            self._db.execute("INSERT INTO duplicates VALUES (?, ?, ?)", (item.source, item.digest, first_source))

    def add(self, entry: dict[str, Any]) -> None:
        """One input's entry (``source``, ``status``, ``folder`` or ``kind`` + ``reason``, ...)."""
        with self._room():
            self._db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)",
                             (entry["source"], entry["status"], entry.get("digest"), entry.get("folder"),
                              json.dumps(entry, default=to_json)))
        self._counts[entry["status"]] += 1

    def resolve_duplicates(self) -> None:
        """Each repeated input points at its first copy's folder, or shares its skip reason
        (one whose first copy never finished, e.g. after an interrupt, gets no entry)."""
        pending = self._db.execute("SELECT source, digest, first_source FROM duplicates ORDER BY rowid")
        for source, digest, first_source in pending:
            row = self._db.execute("SELECT entry FROM entries WHERE digest = ? AND status != 'duplicate' "
                                   "ORDER BY rowid LIMIT 1", (digest,)).fetchone()
            if row is None:
                continue
            first = json.loads(row[0])
            if first["status"] == "skipped":
                self.add({"source": source, "status": "skipped", "kind": first["kind"],
                          "reason": f"same content as {first_source}: {first['reason']}", "digest": digest})
            else:
                self.add(written_entry(Item(source, None, source, digest), "duplicate", first["folder"])
                         | {"same_as": first_source})
        self._db.execute("DELETE FROM duplicates")

    # ------------------------------------------------------------------------------- reading
    def count(self, status: str) -> int:
        return self._counts[status]

    def counts(self) -> dict[str, int]:
        """How many inputs have each status."""
        return {status: self._counts[status] for status in STATUSES}

    def __len__(self) -> int:
        """How many inputs have an entry so far."""
        return sum(self._counts.values())

    def ordered(self) -> Iterator[dict[str, Any]]:
        """The entries in input order (engines finish items in any order), read as needed."""
        for (entry,) in self._db.execute(_IN_ORDER.format(where="")):
            yield json.loads(entry)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every entry, in the order they were recorded."""
        return [json.loads(e) for (e,) in self._db.execute("SELECT entry FROM entries ORDER BY rowid")]

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """The entries of inputs without a result, in input order."""
        rows = self._db.execute(_IN_ORDER.format(where="WHERE entries.status = 'skipped'"))
        return [json.loads(entry) for (entry,) in rows]

    @property
    def folders(self) -> list[Path]:
        """Item folders holding a result, in input order, each once."""
        rows = self._db.execute("""SELECT entries.folder FROM entries LEFT JOIN inputs
                                   ON inputs.source = entries.source WHERE entries.folder IS NOT NULL
                                   GROUP BY entries.folder ORDER BY MIN(COALESCE(inputs.position, ?)),
                                   MIN(entries.rowid)""", (self._inputs,))
        folders = (self.out / folder for (folder,) in rows)
        return [p for p in folders if (p / "summary.json").is_file()]

    @property
    def exit_code(self) -> int:
        return 1 if self._counts["skipped"] else 0

    def _head(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "status": self.status, "domain": self.run["domain"],
                "run_id": self.run["run_id"], "counts": self.counts(), "run_files": self.run_files,
                **({"engine": self.engine} if self.engine else {})}

    def as_dict(self) -> dict[str, Any]:
        """``report.json`` as one dict (for small runs; :meth:`save` streams the entries)."""
        return {**self._head(), "items": list(self.ordered())}

    def save(self) -> None:
        with self._room():
            write_json_rows(self.out / "report.json", self._head(), "items", self.ordered())
