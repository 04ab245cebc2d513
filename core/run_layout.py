"""What a run folder holds and how one item's folder is named, checked and written.

Layout (schema :data:`SCHEMA_VERSION`, documented in README.md "Run contract")::

    OUT/run.json                  what this folder holds: domain, model fingerprint, settings
    OUT/report.json               every input → its folder, or why it was skipped; status
    OUT/<name>-<hash>/summary.json  one item: scores, completeness, steps, files (written last)
    OUT/<name>-<hash>/...           the domain's pictures and tables
    OUT/items/, OUT/units/        with ``--format parquet``: one row per item, one per unit
    OUT/...                         the domain's tables over all items

The driver (:mod:`igkit.run_folder`) decides what to compute; engines call
:func:`write_item_folder` wherever they compute, so every engine writes the same folders.
An item folder is written into ``OUT/.partial-*`` and renamed when whole, so an
interrupt never leaves half an item; the name is a readable part plus the first 10
hex digits of the item's content digest, so different items never share a folder and
a changed input gets a new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domain import Domain, Item
from .errors import OutputError
from .explains import describe
from .records import read_json, write_json
from .runner import Duplicate, Explained, RunOptions

SCHEMA_VERSION = 1
PARTIAL_PREFIX = ".partial-"
#: output formats of ``--format``: item folders only, or the Parquet tables beside them
FORMATS = ("folders", "parquet")
#: the per-unit rows of one item (``Domain.units``), kept in its folder for the run's Parquet tables
UNITS_FILE = "units.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(item: Item) -> str:
    """``<readable>-<hash>``: ASCII, at most 51 characters, unique per content."""
    readable = _UNSAFE.sub("_", item.name).strip("._-")[:40] or "item"
    return f"{readable}-{item.digest[:10]}"


@dataclass
class RunReport:
    """What happened to every input of a run; mirrors ``report.json``."""

    out: Path
    run: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    run_files: list[str] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    order: dict[str, int] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(e["status"] == status for e in self.entries)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "skipped"]

    @property
    def folders(self) -> list[Path]:
        """Item folders holding a result, in input order, each once."""
        seen = dict.fromkeys(self.out / e["folder"] for e in self.ordered() if e.get("folder"))
        return [p for p in seen if (p / "summary.json").is_file()]

    @property
    def exit_code(self) -> int:
        return 1 if self.skipped else 0

    def ordered(self) -> list[dict[str, Any]]:
        """The entries in input order (engines finish items in any order)."""
        return sorted(self.entries, key=lambda e: self.order.get(e["source"], len(self.order)))

    def as_dict(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in ("written", "kept", "duplicate", "skipped")}
        return {"schema_version": SCHEMA_VERSION, "status": self.status, "domain": self.run["domain"],
                "run_id": self.run["run_id"], "counts": counts, "items": self.ordered(),
                "run_files": self.run_files, **({"engine": self.engine} if self.engine else {})}

    def save(self) -> None:
        write_json(self.out / "report.json", self.as_dict())


def run_fingerprint(domain: Domain, model: Any, model_source: str | None, settings: dict[str, Any],
                    options: RunOptions, pictures: bool, output_format: str = "folders") -> dict[str, Any]:
    """Everything an item's files depend on besides its content; hashed into ``run_id``."""
    run = {"schema_version": SCHEMA_VERSION, "domain": domain.name, "model": domain.model_name(model, model_source),
           "model_fingerprint": domain.model_fingerprint(model), "settings": settings,
           **options.describe(), "pictures": pictures, "format": output_format}
    text = json.dumps(run, sort_keys=True, default=str)
    run["run_id"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return run


def prepare_out(out: Path, run: dict[str, Any], overwrite: bool) -> None:
    """Check ``out`` before any computing: a folder we can write, empty or holding this same run.

    Another run's results are removed only with ``overwrite``; a folder igkit did not make
    is never emptied.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".igkit-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to --out {out}: {exc.strerror or exc}; choose a folder you "
                          f"can write to") from None
    for partial in out.glob(PARTIAL_PREFIX + "*"):
        shutil.rmtree(partial, ignore_errors=True)  # an item interrupted while being written
    previous = previous_run(out)
    if previous is None:
        if any(out.iterdir()):
            raise OutputError(f"--out {out} is not empty and holds no igkit run; choose an empty or "
                              f"new folder")
    elif previous.get("run_id") != run["run_id"]:
        if not overwrite:
            changed = [k for k in ("domain", "model_fingerprint", "settings", "integration", "methods",
                                   "pictures", "format") if previous.get(k) != run.get(k)]
            raise OutputError(f"--out {out} holds a run with other {', '.join(changed) or 'settings'}; "
                              f"use another folder, or --overwrite to replace that run's results")
        _remove_run(out)
    write_json(out / "run.json", run)


def previous_run(out: Path) -> dict[str, Any] | None:
    path = out / "run.json"
    if not path.is_file():
        return None
    try:
        previous = read_json(path)
    except Exception:  # noqa: BLE001 - a damaged run.json is a foreign run
        return {"run_id": None}
    return previous if isinstance(previous, dict) else {"run_id": None}


def _remove_run(out: Path) -> None:
    """Delete what an igkit run wrote here: item folders (they hold summary.json) and its files."""
    report_path = out / "report.json"
    names: set[str] = {"run.json", "report.json", "items", "units"}
    if report_path.is_file():
        try:
            names.update(read_json(report_path).get("run_files", []))
        except Exception:  # noqa: BLE001
            pass
    for child in out.iterdir():
        if child.is_dir() and ((child / "summary.json").is_file() or child.name in ("items", "units")):
            shutil.rmtree(child)
        elif child.name in names and child.is_file():
            child.unlink()


def is_complete(folder: Path, item: Item, run_id: str) -> bool:
    """True when ``summary.json`` (written last) matches this item and run, and its files exist."""
    try:
        summary = read_json(folder / "summary.json")
    except Exception:  # noqa: BLE001 - missing or damaged: not complete
        return False
    return (isinstance(summary, dict) and summary.get("run_id") == run_id
            and isinstance(summary.get("item"), dict) and summary["item"].get("digest") == item.digest
            and all((folder / f).is_file() for f in summary.get("files", [])))


def write_item_folder(domain: Domain, explained: Explained, out: Path, run: dict[str, Any],
                      pictures: bool, units: bool = False) -> Path:
    """Write one item into a temporary folder, then rename it into place.

    ``units``: also its per-unit rows (:meth:`Domain.units`), from which ``--format parquet``
    builds ``OUT/units/`` (kept items included, without recomputing them).
    """
    item, expl = explained.item, explained.explanation
    final = out / folder_name(item)
    partial = out / f"{PARTIAL_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    _attribution_of(expl).model = {"name": run["model"], "digest": run["model_fingerprint"][:10]}
    try:
        files = domain.write_item(expl, partial, pictures=pictures)
        if units:
            write_json(partial / UNITS_FILE, domain.units(expl))
            files.append(UNITS_FILE)
        summary = item_summary(domain, explained, run, files)
        write_json(partial / "summary.json", summary)
        if final.exists():
            shutil.rmtree(final)  # a stale or partial earlier copy of this very item
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def item_summary(domain: Domain, explained: Explained, run: dict[str, Any], files: list[str]
                 ) -> dict[str, Any]:
    """The item's ``summary.json``: the same keys in every domain, then the domain's own."""
    item, attribution = explained.item, _attribution_of(explained.explanation)
    prepared = attribution.prepared
    target = prepared.label or prepared.target
    explains = describe(attribution, domain.other_scale(explained.explanation))
    return {"schema_version": SCHEMA_VERSION, "domain": domain.name,
            "item": {"source": item.source, "name": item.name, "digest": item.digest},
            "target": target, **attribution.summary,
            "seconds": round(attribution.seconds, 4), "explains": explains,
            "methods": list(attribution.methods), "run_id": run["run_id"],
            **domain.summary_fields(explained.explanation), "files": sorted(files)}


def _attribution_of(explanation: Any):
    """Domain explanations carry the runner's :class:`~igkit.domain.Attribution` as ``attribution``."""
    return getattr(explanation, "attribution", explanation)
