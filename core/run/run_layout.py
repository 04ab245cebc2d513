"""What a run folder holds and how one item's folder is named, checked and written.

Layout (schema :data:`SCHEMA_VERSION`, documented in README.md "Run contract")::

    OUT/run.json                  what this folder holds: domain, model fingerprint, settings
    OUT/report.json               every input → its folder, or why it was skipped; status
    OUT/<name>-<hash>/summary.json  one item: scores, completeness, steps, files (written last)
    OUT/<name>-<hash>/...           the domain's pictures and tables
    OUT/items/, OUT/units/        with ``--format parquet``: one row per item, one per unit
    OUT/...                         the domain's tables over all items
    OUT/.igkit-tables.json        which item folders those tables were written from (resume)

The driver (:mod:`igkit.run.run_folder`) decides what to compute; engines call
:func:`write_item_folder` wherever they compute, so every engine writes the same folders.
An item folder is written into ``OUT/.partial-*`` and renamed when whole, so an
interrupt never leaves half an item; the name is a readable part plus the first 10
hex digits of the item's content digest, so different items never share a folder and
a changed input gets a new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from igkit.domain import Domain, Explanation, Item
from igkit.errors import OutputError
from igkit.io.records import read_json, write_json
from igkit.outputs.explains import describe
from igkit.run.runner import RunOptions

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


def run_fingerprint(domain: Domain, model: Any, model_source: str | None, settings: dict[str, Any],
                    options: RunOptions, pictures: bool, output_format: str = "folders") -> dict[str, Any]:
    """Everything an item's files depend on besides its content; hashed into ``run_id``."""
    run = {"schema_version": SCHEMA_VERSION, "domain": domain.name, "model": domain.model_name(model, model_source),
           "model_fingerprint": domain.model_fingerprint(model), "settings": settings,
           **options.describe(), "pictures": pictures, "format": output_format}
    text = json.dumps(run, sort_keys=True, default=str)
    run["run_id"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return run


#: the lock a run holds in OUT while it writes there (owner's pid and host)
LOCK_FILE = ".igkit.lock"
#: which item folders the domain's run tables were last written from (a resume that changed
#: nothing keeps them instead of rereading every item)
TABLES_FILE = ".igkit-tables.json"
#: the keys that make a run.json igkit's own (the marker of a folder igkit may touch)
_MARKER_KEYS = ("schema_version", "domain", "run_id", "model_fingerprint")
_ITEM_FOLDER = re.compile(r"^[A-Za-z0-9._-]*-[0-9a-f]{10}$")


def check_out(out: str | Path, inputs: Sequence[Any] = ()) -> Path:
    """Refuse an ``--out`` that names no folder of its own: empty, the current folder or the
    file system's root, or a folder inside an input folder (the next run would read its files)."""
    text = str(out)
    if not text.strip():
        raise OutputError("--out is empty; give the folder to write into, e.g. --out results/")
    path = Path(text).absolute()
    for where, folder in (("the current folder", Path.cwd()), ("the root folder", Path(path.anchor))):
        if path.resolve() == folder.resolve():
            raise OutputError(f"--out {text} is {where}; give a folder of its own, e.g. --out results/")
    for source in inputs:
        if isinstance(source, (str, Path)) and str(source) and os.path.isdir(source):  # False for a long text
            folder = Path(source).resolve()
            if path.resolve() == folder or folder in path.resolve().parents:
                raise OutputError(f"--out {text} is inside the input folder {source}; the next run would "
                                  f"read its own outputs as inputs: write elsewhere")
    return path


def remove_partials(out: Path, pid: int | None = None) -> None:
    """The half-written item folders (``OUT/.partial-*``) in ``out``: all, or those of process ``pid``
    (a worker that died while writing). Only the run holding ``out``'s lock may call this."""
    for partial in out.glob(f"{PARTIAL_PREFIX}*" if pid is None else f"{PARTIAL_PREFIX}*-{pid}"):
        shutil.rmtree(partial, ignore_errors=True)


def prepare_out(out: Path, run: dict[str, Any], overwrite: bool) -> None:
    """Check ``out`` before any computing: a folder we can write, empty or holding this same run.

    Call with the run's lock held (:func:`run_lock`). Another run's results are removed only
    with ``overwrite`` and only what that run wrote; a folder igkit did not make is never
    emptied.
    """
    remove_partials(out)  # items interrupted while being written
    for stale in out.glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # a JSON or CSV file interrupted while being written
    for name in ("run.json", "report.json"):
        if (out / name).exists() and not (out / name).is_file():
            raise OutputError(f"{out / name} is not a file; igkit did not make it: use another folder")
    previous = previous_run(out)
    if previous is None:
        if any(p.name != LOCK_FILE for p in out.iterdir()):
            raise OutputError(f"--out {out} is not empty and holds no igkit run; choose an empty or "
                              f"new folder")
    elif previous.get("run_id") != run["run_id"]:
        if not overwrite:
            changed = [k for k in ("domain", "model_fingerprint", "settings", "integration", "methods",
                                   "pictures", "format") if previous.get(k) != run.get(k)]
            raise OutputError(f"--out {out} holds a run with other {', '.join(changed) or 'settings'}; "
                              f"use another folder, or --overwrite to replace that run's results")
        _remove_run(out, previous["run_id"])
    try:
        write_json(out / "run.json", run)
    except OSError as exc:
        raise OutputError(f"cannot write {out / 'run.json'}: {exc.strerror or exc}; make room or fix the "
                          f"permissions, then run the same command again") from None


def make_out(out: Path) -> None:
    """Create ``out`` and check that it can be written."""
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


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.igkit.lock`` while the run writes: a second run into the same folder refuses
    (instead of deleting the first one's work); a lock left by a process that is gone is taken over."""
    path = out / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None and not _is_stale(owner):
                raise OutputError(f"--out {out} is being written by another igkit run (process "
                                  f"{owner.get('pid')} on {owner.get('host')}, since {owner.get('since')}); "
                                  f"wait for it to finish, or use another folder") from None
            path.unlink(missing_ok=True)  # its owner is gone
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise OutputError(f"cannot take the lock {path}; remove it if no igkit run is writing {out}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _lock_owner(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable or half written: nobody can be waited for
    return owner if isinstance(owner, dict) else None


def _is_stale(owner: dict[str, Any]) -> bool:
    """A lock of this host whose process is gone (another host's lock is never taken over)."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def previous_run(out: Path) -> dict[str, Any] | None:
    """The run this folder holds (its ``run.json``, igkit's marker), None if none; a ``run.json``
    that is not igkit's or is damaged stops the run (igkit never replaces what it did not write)."""
    path = out / "run.json"
    if not path.is_file():
        return None
    try:
        previous = read_json(path)
    except Exception:  # noqa: BLE001 - not JSON: damaged, or not ours
        previous = None
    if not (isinstance(previous, dict) and all(k in previous for k in _MARKER_KEYS)):
        raise OutputError(f"{path} is not an igkit run.json (damaged, or another program's); igkit "
                          f"does not replace it: use another folder, or remove it if you know it is a "
                          f"damaged igkit run")
    return previous


def _remove_run(out: Path, run_id: str) -> None:
    """Delete what that igkit run wrote here, nothing else: its item folders (named
    ``<name>-<hash>``, holding its ``summary.json``), its Parquet tables and its files."""
    names: set[str] = {"run.json", "report.json", TABLES_FILE}
    try:
        report = read_json(out / "report.json")
        names.update(f for f in report.get("run_files", []) if isinstance(f, str) and "/" not in f)
    except Exception:  # noqa: BLE001 - no report: only the item folders and run.json are known
        pass
    for child in out.iterdir():
        if child.is_dir() and _is_item_folder(child, run_id):
            shutil.rmtree(child)
        elif child.is_dir() and child.name in {"items", "units"} & names and _only_parts(child):
            shutil.rmtree(child)
        elif child.name in names and child.is_file():
            child.unlink()


def _is_item_folder(folder: Path, run_id: str) -> bool:
    if not _ITEM_FOLDER.match(folder.name):
        return False
    try:
        summary = read_json(folder / "summary.json")
    except Exception:  # noqa: BLE001
        return False
    return isinstance(summary, dict) and summary.get("run_id") == run_id


def _only_parts(folder: Path) -> bool:
    return all(p.is_file() and p.name.startswith("part-") and p.suffix == ".parquet" for p in folder.iterdir())


def tables_source(run_id: str, folders: Sequence[Path]) -> str:
    """A digest of what a run's tables are written from: the run and its item folders, in order."""
    digest = hashlib.sha256(run_id.encode())
    for folder in folders:
        digest.update(b"\0" + folder.name.encode())
    return digest.hexdigest()


def tables_kept(out: Path, source: str) -> list[str] | None:
    """The run tables already in ``out`` when they were written from ``source`` and all exist."""
    try:
        state = read_json(out / TABLES_FILE)
    except Exception:  # noqa: BLE001 - missing or damaged: write the tables again
        return None
    files = state.get("files") if isinstance(state, dict) and state.get("source") == source else None
    if not (isinstance(files, list) and all(isinstance(f, str) and (out / f).is_file() for f in files)):
        return None
    return files


def remember_tables(out: Path, source: str, files: list[str]) -> None:
    write_json(out / TABLES_FILE, {"source": source, "files": files})


def is_complete(folder: Path, item: Item, run_id: str) -> bool:
    """True when ``summary.json`` (written last) matches this item and run, and its files exist."""
    try:
        summary = read_json(folder / "summary.json")
    except Exception:  # noqa: BLE001 - missing or damaged: not complete
        return False
    return (isinstance(summary, dict) and summary.get("run_id") == run_id
            and isinstance(summary.get("item"), dict) and summary["item"].get("digest") == item.digest
            and all((folder / f).is_file() for f in summary.get("files", [])))


def write_item_folder(domain: Domain, explanation: Explanation, out: Path, run: dict[str, Any],
                      pictures: bool, units: bool = False) -> Path:
    """Write one item into a temporary folder, then rename it into place.

    ``units``: also its per-unit rows (:meth:`Domain.units`), from which ``--format parquet``
    builds ``OUT/units/`` (kept items included, without recomputing them).
    """
    item = explanation.item
    final = out / folder_name(item)
    partial = out / f"{PARTIAL_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    explanation.attribution.model = {"name": run["model"], "digest": run["model_fingerprint"][:10]}
    try:
        files = domain.write_item(explanation, partial, pictures=pictures)
        if units:
            write_json(partial / UNITS_FILE, domain.units(explanation))
            files.append(UNITS_FILE)
        summary = item_summary(domain, explanation, run, files)
        write_json(partial / "summary.json", summary)
        if final.exists():
            shutil.rmtree(final)  # a stale or partial earlier copy of this very item
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def item_summary(domain: Domain, explanation: Explanation, run: dict[str, Any], files: list[str]
                 ) -> dict[str, Any]:
    """The item's ``summary.json``: the same keys in every domain, then the domain's own."""
    item, attribution = explanation.item, explanation.attribution
    prepared = attribution.prepared
    target = prepared.label or prepared.target
    explains = describe(attribution, domain.other_scale(explanation))
    return {"schema_version": SCHEMA_VERSION, "domain": domain.name,
            "item": {"source": item.source, "name": item.name, "digest": item.digest},
            "target": target, **attribution.summary,
            "seconds": round(attribution.seconds, 4), "explains": explains,
            "methods": list(attribution.methods), "run_id": run["run_id"],
            **domain.summary_fields(explanation), "files": sorted(files)}
