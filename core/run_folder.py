"""A run into an output folder: one folder per item written atomically, ``report.json`` kept
current, resume keyed on content, model and settings.

Layout (schema :data:`SCHEMA_VERSION`, documented in README.md "Run contract")::

    OUT/run.json                  what this folder holds: domain, model fingerprint, settings
    OUT/report.json               every input → its folder, or why it was skipped; status
    OUT/<name>-<hash>/summary.json  one item: scores, completeness, steps, files (written last)
    OUT/<name>-<hash>/...           the domain's pictures and tables
    OUT/...                         the domain's tables over all items

An item folder is written into ``OUT/.partial-*`` and renamed when whole, so an
interrupt never leaves half an item; the name is a readable part plus the first 10
hex digits of the item's content digest, so different items never share a folder and
a changed input gets a new one.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .domain import BadItem, Domain, Item
from .errors import IGInputError, Interrupted, OutputError
from .printable import printable
from .progress import Progress, on_pass
from .records import read_json, write_json
from .runner import Duplicate, Explained, RunOptions, explain_stream, skipped_outcome

SCHEMA_VERSION = 1
PARTIAL_PREFIX = ".partial-"
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

    def count(self, status: str) -> int:
        return sum(e["status"] == status for e in self.entries)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "skipped"]

    @property
    def folders(self) -> list[Path]:
        """Item folders holding a result, in input order, each once."""
        seen = dict.fromkeys(self.out / e["folder"] for e in self.entries if e.get("folder"))
        return [p for p in seen if (p / "summary.json").is_file()]

    @property
    def exit_code(self) -> int:
        return 1 if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in ("written", "kept", "duplicate", "skipped")}
        entries = sorted(self.entries, key=lambda e: self.order.get(e["source"], len(self.order)))
        return {"schema_version": SCHEMA_VERSION, "status": self.status, "domain": self.run["domain"],
                "run_id": self.run["run_id"], "counts": counts, "items": entries,
                "run_files": self.run_files}

    def save(self) -> None:
        write_json(self.out / "report.json", self.as_dict())


def nonempty(domain: Domain, items: Iterable[Item | BadItem]) -> Iterator[Item | BadItem]:
    """The items, or the error that none were given, before anything is written."""
    stream = iter(items)
    first = next(stream, None)
    if first is None:
        raise IGInputError(f"no {domain.name} items given; {domain.items_help}")
    return itertools.chain([first], stream)


def run_fingerprint(domain: Domain, model: Any, model_source: str | None, settings: dict[str, Any],
                    options: RunOptions, pictures: bool) -> dict[str, Any]:
    """Everything an item's files depend on besides its content; hashed into ``run_id``."""
    run = {"schema_version": SCHEMA_VERSION, "domain": domain.name, "model": model_source,
           "model_fingerprint": domain.model_fingerprint(model), "settings": settings,
           **options.describe(), "pictures": pictures}
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
                                   "pictures") if previous.get(k) != run.get(k)]
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
    names: set[str] = {"run.json", "report.json"}
    if report_path.is_file():
        try:
            names.update(read_json(report_path).get("run_files", []))
        except Exception:  # noqa: BLE001
            pass
    for child in out.iterdir():
        if child.is_dir() and (child / "summary.json").is_file():
            shutil.rmtree(child)
        elif child.name in names and child.is_file():
            child.unlink()


def is_complete(folder: Path, item: Item, run_id: str) -> bool:
    """True when ``summary.json`` (written last) matches this item and run, and its files exist."""
    try:
        summary = read_json(folder / "summary.json")
    except Exception:  # noqa: BLE001 - missing or damaged: not complete
        return False
    return (summary.get("run_id") == run_id and summary.get("item", {}).get("digest") == item.digest
            and all((folder / f).is_file() for f in summary.get("files", [])))


def write_item_folder(domain: Domain, explained: Explained, out: Path, run: dict[str, Any],
                      pictures: bool) -> Path:
    """Write one item into a temporary folder, then rename it into place."""
    item, expl = explained.item, explained.explanation
    final = out / folder_name(item)
    partial = out / f"{PARTIAL_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        files = domain.write_item(expl, partial, pictures=pictures)
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
    return {"schema_version": SCHEMA_VERSION, "domain": domain.name,
            "item": {"source": item.source, "name": item.name, "digest": item.digest},
            "target": target, **attribution.summary, "seconds": round(attribution.seconds, 4),
            "methods": list(attribution.methods), "run_id": run["run_id"],
            **domain.summary_fields(explained.explanation), "files": sorted(files)}


def _attribution_of(explanation: Any):
    """Domain explanations carry the runner's :class:`~igkit.domain.Attribution` as ``attribution``."""
    return getattr(explanation, "attribution", explanation)


def run_to_folder(domain: Domain, model: Any, items: Iterable[Item | BadItem], out: str | Path, *,
                  settings: dict[str, Any], options: RunOptions, model_source: str | None = None,
                  pictures: bool = True, overwrite: bool = False, show_progress: bool = True,
                  total: int | None = None) -> RunReport:
    """Explain ``items`` into ``out``; resume what is finished; ``report.json`` updated as it goes.

    Raises :class:`~igkit.errors.Interrupted` on Ctrl-C after saving the report: rerun the
    same command to resume.
    """
    out = Path(out)
    items = nonempty(domain, items)
    run = run_fingerprint(domain, model, model_source, settings, options, pictures)
    prepare_out(out, run, overwrite)
    report = RunReport(out, run)
    bar = Progress([], total=total, desc=f"explain {domain.name}", enabled=show_progress)
    points = {"n": 0}

    def done(item: Item) -> bool:
        folder = out / folder_name(item)
        if is_complete(folder, item, run["run_id"]):
            report.entries.append(report_entry(item, "kept", folder.name))
            bar.advance(postfix="kept")
            return True
        return False

    def working(item: Item | None) -> None:
        points["n"] = 0
        bar.refresh(f"{item.name[:30]}" if item is not None else "")

    def passed(n: int) -> None:
        points["n"] += n
        bar.refresh(f"{points['n']} path points")

    def numbered() -> Iterable[Item | BadItem]:
        for entry in items:
            report.order.setdefault(entry.source, len(report.order))
            yield entry

    stream = explain_stream(domain, model, numbered(), settings, options, already_done=done,
                            on_item=working)
    try:
        with on_pass(passed):
            for outcome in stream:
                _record(domain, outcome, out, run, report, pictures)
                bar.advance()
                report.save()
        report.status = "complete"
    except KeyboardInterrupt:
        raise interrupted(report, bar) from None
    finally:
        if report.status != "running":
            resolve_duplicates(report)
            report.run_files = domain.write_run(out, report.folders, pictures=pictures)
            report.save()
    bar.close()
    return report


def interrupted(report: RunReport, bar: Progress) -> Interrupted:
    """Ctrl-C: save the report as interrupted; the error to raise tells how to resume."""
    report.status = "interrupted"
    report.save()
    bar.close()
    return Interrupted(f"interrupted: {report.count('written') + report.count('kept')} item(s) are in "
                       f"{report.out}; run the same command again to resume")


def _record(domain: Domain, outcome: Any, out: Path, run: dict[str, Any], report: RunReport,
            pictures: bool) -> None:
    if isinstance(outcome, Explained):
        try:
            folder = write_item_folder(domain, outcome, out, run, pictures)
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}; finished items are kept, "
                              f"rerun to resume") from None
        except Exception as exc:  # noqa: BLE001 - a rendering bug loses this item only
            outcome = skipped_outcome(outcome.item, exc)
        else:
            report.entries.append(report_entry(outcome.item, "written", folder.name))
            return
    if isinstance(outcome, Duplicate):
        report.duplicates.append(outcome)  # its first copy may still be in flight
        return
    entry = {"source": outcome.source, "status": "skipped", "kind": outcome.kind, "reason": outcome.reason}
    if outcome.item is not None:
        entry["digest"] = outcome.item.digest
    if outcome.traceback:
        entry["traceback"] = outcome.traceback
    report.entries.append(entry)
    print(f"skipped {printable(outcome.source)}: {printable(outcome.reason, 1000)}", file=sys.stderr)


def resolve_duplicates(report: RunReport) -> None:
    """Each repeated item points at its first copy's folder, or shares its skip reason."""
    firsts = {e["digest"]: e for e in report.entries if e.get("digest") and e["status"] != "duplicate"}
    for dup in report.duplicates:
        first = firsts.get(dup.first.digest)
        if first is None:  # interrupted before the first copy finished
            continue
        if first["status"] == "skipped":
            report.entries.append({"source": dup.item.source, "status": "skipped", "kind": first["kind"],
                                   "reason": f"same content as {dup.first.source}: {first['reason']}",
                                   "digest": dup.item.digest})
        else:
            entry = report_entry(dup.item, "duplicate", first["folder"])
            entry["same_as"] = dup.first.source
            report.entries.append(entry)
    report.duplicates.clear()


def report_entry(item: Item, status: str, folder: str) -> dict[str, Any]:
    return {"source": item.source, "status": status, "folder": folder, "digest": item.digest}
