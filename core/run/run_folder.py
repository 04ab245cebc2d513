"""The one driver of a run into an output folder, whichever engine computes.

The driver reads the items, skips those already in the folder for this run (resume per
item, by content digest), hands the rest to an engine (:mod:`igkit.run.engines`), records
each item's entry as it comes back, keeps ``report.json`` current, counts what is on
disk when interrupted (Ctrl-C, SIGTERM, SIGHUP), and at the end writes the domain's run
tables and, with ``--format parquet``, the Parquet tables. Layout and item folders:
:mod:`igkit.run.run_layout`.
"""
from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from igkit.domain import BadItem, Domain, Item
from igkit.errors import IGInputError, Interrupted, OutputError
from igkit.outputs.printable import printable
from igkit.run.engines import Engine, Job, skipped_entry, written_entry
from igkit.run.progress import Progress, on_pass
from igkit.run.report import RunReport
from igkit.run.run_layout import (FORMATS, TABLES_FILE, check_out, folder_name, is_complete, make_out, prepare_out,
                                  remember_tables, run_fingerprint, run_lock, tables_kept, tables_source)
from igkit.run.runner import RunOptions, Skipped

__all__ = ["RunReport", "nonempty", "run_to_folder"]


def nonempty(domain: Domain, items: Iterable[Item | BadItem]) -> Iterator[Item | BadItem]:
    """The items, or the error that none were given, before anything is written."""
    stream = iter(items)
    first = next(stream, None)
    if first is None:
        raise IGInputError(f"no {domain.name} items given; {domain.items_help}")
    return itertools.chain([first], stream)


def run_to_folder(domain: Domain, model: Any, items: Iterable[Item | BadItem], out: str | Path, *,
                  settings: dict[str, Any], options: RunOptions, model_source: str | None = None,
                  pictures: bool = True, overwrite: bool = False, show_progress: bool = True,
                  total: int | None = None, engine: Engine | None = None,
                  output_format: str = "folders", inputs: Sequence[Any] = ()) -> RunReport:
    """Explain ``items`` into ``out`` with ``engine`` (default: this process); resume what is
    finished; ``report.json`` updated as it goes.

    ``model`` is loaded by the caller (its fingerprint names the run; the local engine
    computes with it). ``output_format="parquet"`` adds ``OUT/items/`` and ``OUT/units/``.
    ``inputs``: the files and folders the items come from (``--out`` may not be inside one).
    Raises :class:`~igkit.errors.Interrupted` on Ctrl-C, SIGTERM or SIGHUP after saving the
    report: rerun the same command to resume.
    """
    if engine is None:
        from igkit.run.engines.local import LocalEngine

        engine = LocalEngine()
    if output_format not in FORMATS:
        raise IGInputError(f"--format {output_format!r}: choose one of {', '.join(FORMATS)}")
    if output_format == "parquet":
        from igkit.io.parquet_tables import require_pyarrow

        require_pyarrow()
    out = check_out(out, inputs)
    items = nonempty(domain, items)
    run = run_fingerprint(domain, model, model_source, settings, options, pictures, output_format)
    job = Job(domain, model_source, settings, options, run, str(out.absolute()), pictures,
              output_format == "parquet")
    engine.check(job)
    make_out(out)
    with run_lock(out):
        prepare_out(out, run, overwrite)
        return _drive(domain, model, items, engine, job, overwrite, show_progress, total)


def _drive(domain: Domain, model: Any, items: Iterator[Item | BadItem], engine: Engine, job: Job,
           overwrite: bool, show_progress: bool, total: int | None) -> RunReport:
    """The run itself, with the folder prepared and locked."""
    report = RunReport(Path(job.out), job.run)
    driver = _Driver(domain, report, overwrite, Progress([], total=total, desc=f"explain {domain.name}"
                                      + ("" if engine.name == "local" else f" ({engine.name})"),
                                      enabled=show_progress))
    points = {"n": 0}

    def working(item: Item | None) -> None:
        points["n"] = 0
        driver.bar.refresh(f"{item.name[:30]}" if item is not None else "")

    def passed(n: int) -> None:
        points["n"] += n
        driver.bar.refresh(f"{points['n']} path points")

    try:
        with _signals_interrupt(), on_pass(passed), \
                contextlib.closing(engine.run(job, model, driver.todo(items), working)) as entries:
            for entry in entries:  # closing: an engine stops its workers before the count on disk
                driver.record(entry)
        report.status = "complete"
    except KeyboardInterrupt:
        report.status = "interrupted"
        driver.count_on_disk()
    except BaseException:
        report.status = "failed"
        raise
    finally:
        report.engine = engine.describe()
        driver.finish(job.pictures, "parquet" if job.units else "folders")
    if report.status == "interrupted":
        raise Interrupted(f"interrupted: {report.count('written') + report.count('kept')} item(s) are in "
                          f"{report.out}; run the same command again to resume")
    return report


class _Driver:
    """The bookkeeping of one run: which items went to the engine, what came back."""

    def __init__(self, domain: Domain, report: RunReport, overwrite: bool, bar: Progress) -> None:
        self.domain, self.report, self.overwrite, self.bar = domain, report, overwrite, bar
        self.sent: dict[str, Item] = {}  # digest → items handed to the engine, not yet back
        self.started = time.perf_counter()
        self.last_save, self.save_cost = 0.0, 0.0

    def todo(self, items: Iterable[Item | BadItem]) -> Iterator[Item]:
        """The items the engine must compute; the rest (bad, repeated, finished) recorded here."""
        report, run_id = self.report, self.report.run["run_id"]
        for entry in items:
            report.note_input(entry.source)
            if isinstance(entry, BadItem):
                self.record(skipped_entry(Skipped(entry.source, entry.reason)))
                continue
            first = report.first_copy(entry)
            if first is not None:
                report.add_duplicate(entry, first)
                self.bar.advance()
                continue
            folder = report.out / folder_name(entry)
            if is_complete(folder, entry, run_id):
                self.record(written_entry(entry, "kept", folder.name))
                continue
            if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
                if not self.overwrite:
                    self.record(skipped_entry(Skipped(entry.source, f"{folder} is not a folder (igkit writes "
                                                      f"this item's folder there); move it away, or rerun "
                                                      f"with --overwrite to replace it", "input", entry)))
                    continue
                folder.unlink()
            self.sent[entry.digest] = Item(entry.source, None, entry.name, entry.digest)
            yield entry

    def record(self, entry: dict[str, Any]) -> None:
        self.report.add(entry)
        self.sent.pop(entry.get("digest"), None)
        if entry["status"] == "skipped":
            print(f"skipped {printable(entry['source'])}: {printable(entry['reason'], 1000)}", file=sys.stderr)
        elapsed = time.perf_counter() - self.started
        rate = len(self.report) / elapsed if elapsed > 1 else 0.0
        self.bar.advance(postfix=f"{rate:.1f} items/s" if rate else entry["status"])
        self._save_now_and_then()

    def count_on_disk(self) -> None:
        """After an interrupt: items the engine finished but had not reported are written too."""
        run_id = self.report.run["run_id"]
        for item in list(self.sent.values()):
            folder = self.report.out / folder_name(item)
            if is_complete(folder, item, run_id):
                self.record(written_entry(item, "written", folder.name))

    def save(self) -> None:
        """``report.json``; a disk that cannot take it stops the run with what to do."""
        try:
            self.report.save()
        except OSError as exc:
            raise OutputError(f"cannot write {self.report.out / 'report.json'}: {exc.strerror or exc}; "
                              f"make room or fix the permissions, then rerun the same command to "
                              f"resume (finished items are kept)") from None

    def _save_now_and_then(self) -> None:
        """``report.json`` at most every few seconds: rewriting it per item would be quadratic."""
        now = time.perf_counter()
        if now - self.last_save > max(2.0, 20 * self.save_cost):
            self.save()
            self.last_save = time.perf_counter()
            self.save_cost = self.last_save - now

    def finish(self, pictures: bool, output_format: str) -> None:
        """Duplicates resolved, the run's tables written, the report saved."""
        report = self.report
        if report.status in ("complete", "interrupted"):
            report.resolve_duplicates()
            try:
                report.run_files = self._run_tables(pictures, output_format)
            except OSError as exc:
                report.status = "failed"
                self.save()
                raise OutputError(f"cannot write the run's tables in {report.out}: {exc.strerror or exc}; "
                                  f"make room, then rerun the same command (finished items are kept)") from None
        self.bar.close()
        self.save()

    def _run_tables(self, pictures: bool, output_format: str) -> list[str]:
        """The domain's tables (kept when written from these same folders), then Parquet's."""
        report = self.report
        folders = report.folders
        source = tables_source(report.run["run_id"], folders)
        files = tables_kept(report.out, source)
        if files is None:
            (report.out / TABLES_FILE).unlink(missing_ok=True)  # tables half rewritten match no folders
            files = list(self.domain.write_run(report.out, folders, pictures=pictures))
            remember_tables(report.out, source, files)
        if output_format == "parquet":
            from igkit.io.parquet_tables import write_tables

            files += write_tables(report)
        return files


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run as Ctrl-C does: report saved, finished items kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    names = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    saved = {name: signal.signal(getattr(signal, name), stop) for name in names}
    try:
        yield
    finally:
        for name, handler in saved.items():
            signal.signal(getattr(signal, name), handler)
