"""``--engine ray``: the runner's work spread over Ray Data workers (see ``core/RAY.md``).

Not a second implementation: the driver reads the items with the domain's own
``read_items`` and sends them, in the windows the local runner integrates together,
to a pool of actors; each actor loads the model once with the domain's
``load_model`` and runs :func:`igkit.runner.explain_stream` on its window (gradients
enabled, never inside an inference-only context), then writes what the local engine
writes for those items (the per-item folders, through
:func:`igkit.run_folder.write_item_folder`) plus one Parquet part file
``OUT/attributions/part-<run_id>-<window>.parquet`` (written to a temporary name,
then renamed). The driver keeps ``report.json`` and the progress line.

Fault tolerance: a window's part file name depends only on the run and the window's
items, so a task Ray retries after a lost worker rewrites the same file (no item
twice); items whose rows exist for this run are not recomputed on a rerun (resume);
a window whose worker died is retried one item at a time, and an item that killed its
worker again is skipped with the reason (it never stops the run).

Ray is optional (``pip install 'igkit[ray]'``) and imported only when used.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from .domain import BadItem, Domain, Item, content_digest
from .errors import IGInputError, IgkitError, ModelError, OutputError
from .progress import Progress
from .records import read_json
from .run_folder import (RunReport, folder_name, interrupted, is_complete, item_summary, nonempty, prepare_out,
                         previous_run, report_entry, resolve_duplicates, run_fingerprint, write_item_folder)
from .runner import Duplicate, Explained, RunOptions, Skipped, skipped_outcome, explain_stream

INSTALL_HINT = "--engine ray needs Ray: pip install 'igkit[ray]'"
#: the Parquet data set inside OUT
PARQUET_DIR = "attributions"
#: an item is skipped once a worker has died this many times while it was being computed
MAX_CRASHES = 2
#: columns added to every row (``attribute_dataset``) or written per item (``--engine ray``)
COLUMNS = ("run_id", "source", "name", "digest", "status", "kind", "reason", "folder", "target",
           "score_input", "score_baseline", "attribution_sum", "completeness_delta", "completeness_error",
           "converged", "steps", "path_points", "method", "seconds", "summary", "shapes", "attributions",
           "methods", "method_attributions")


def require_ray() -> Any:
    """The ``ray`` module, or the error that says how to install it."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise IGInputError(INSTALL_HINT) from None
    return ray


def row_schema() -> Any:
    """The Arrow schema of the igkit columns (documented in ``core/RAY.md``, "Parquet layout")."""
    import pyarrow as pa

    nested = pa.list_(pa.list_(pa.float32()))
    types = {"score_input": pa.float64(), "score_baseline": pa.float64(), "attribution_sum": pa.float64(),
             "completeness_delta": pa.float64(), "completeness_error": pa.float64(),
             "converged": pa.bool_(), "steps": pa.int64(), "path_points": pa.int64(),
             "seconds": pa.float64(), "shapes": pa.list_(pa.list_(pa.int64())), "attributions": nested,
             "methods": pa.list_(pa.string()), "method_attributions": nested}
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])


# --------------------------------------------------------------------------------------------
# the actor: one model per worker, the runner's per-item path on each window
# --------------------------------------------------------------------------------------------
class Ledger:
    """How often a window was attempted and which items were being computed when a worker died
    (a Ray actor; lives as long as the run)."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.starts: dict[str, int] = {}
        self.finishes: dict[str, int] = {}

    def attempt(self, key: str) -> int:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        return self.attempts[key]

    def start(self, digest: str) -> int:
        """Note that ``digest`` is being computed; return how often that ended in a death before."""
        died = self.starts.get(digest, 0) - self.finishes.get(digest, 0)
        self.starts[digest] = self.starts.get(digest, 0) + 1
        return died

    def finish(self, digest: str) -> None:
        self.finishes[digest] = self.finishes.get(digest, 0) + 1


class Explainer:
    """A Ray Data callable class: loads the model once, then explains batches.

    Two kinds of batch: windows of items (``--engine ray``: a row holds a pickled list of
    :class:`Item`; results go to OUT and a light row per item comes back), or a user's
    rows (:func:`attribute_dataset`: ``column`` holds the items; the igkit columns are added).
    """

    def __init__(self, domain: Domain, model_source: str | None, settings: dict[str, Any],
                 options: RunOptions, *, run: dict[str, Any] | None = None, out: str | None = None,
                 pictures: bool = False, threads: int = 1, ledger: Any = None, column: str | None = None,
                 max_crashes: int = MAX_CRASHES) -> None:
        torch.set_num_threads(max(1, threads))
        self.domain, self.settings, self.options = domain, settings, options
        self.run = run or {"run_id": None}
        self.out = Path(out) if out is not None else None
        self.pictures, self.ledger, self.column, self.max_crashes = pictures, ledger, column, max_crashes
        self.error: IgkitError | None = None
        try:
            self.model = domain.load_model(model_source, **settings)
        except IgkitError as exc:  # raised from the first batch: Ray passes a task's error on whole
            self.error = exc
            return
        expected = self.run.get("model_fingerprint")
        if expected is not None and domain.model_fingerprint(self.model) != expected:
            self.error = ModelError(f"a Ray worker on {os.uname().nodename} loaded a different model "
                                    f"({model_source or 'the default'}) than the driver; give every node "
                                    f"the same model file")

    def __call__(self, batch: Any) -> Any:
        if self.column is not None:
            if self.error is not None:
                raise self.error
            with torch.inference_mode(False), torch.enable_grad():
                return self._rows(batch)
        try:
            if self.error is not None:
                raise self.error
            # Ray Data does not disable autograd, but say so: IG needs gradients
            with torch.inference_mode(False), torch.enable_grad():
                return self._windows(batch)
        except IgkitError as exc:  # a row the driver raises again (Ray would hide the error's type)
            return _light_table([{"status": "error", "kind": type(exc).__name__, "reason": str(exc)}])

    # --- the per-item path, with crash accounting ----------------------------------------------
    def _explain(self, entries: list[Item | BadItem], key: str) -> list[Any]:
        """Outcomes of ``entries`` (the runner's), retrying a window whose worker died item by item."""
        import ray

        attempt = 1 if self.ledger is None else ray.get(self.ledger.attempt.remote(key))
        if attempt == 1:
            return list(explain_stream(self.domain, self.model, entries, self.settings, self.options))
        outcomes: list[Any] = []
        for entry in entries:  # a worker died on this window: one item at a time, each noted
            if isinstance(entry, Item):
                deaths = 1 + ray.get(self.ledger.start.remote(entry.digest))
                if deaths >= self.max_crashes:
                    outcomes.append(Skipped(entry.source, f"the worker process died {deaths} times while "
                                            f"computing this item (a crash in native code, or killed for "
                                            f"memory); skipped", "internal", entry))
                    continue
            outcomes += explain_stream(self.domain, self.model, [entry], self.settings, self.options)
            if isinstance(entry, Item):
                ray.get(self.ledger.finish.remote(entry.digest))
        return outcomes

    # --- --engine ray: windows in, files written, light rows out -----------------------------
    def _windows(self, batch: Any) -> Any:
        light: list[dict[str, Any]] = []
        for key, blob in zip(batch.column("key").to_pylist(), batch.column("items").to_pylist()):
            entries = pickle.loads(blob)
            rows: list[dict[str, Any]] = []
            for outcome in self._explain(entries, key):
                row = self._write(outcome) if isinstance(outcome, Explained) else None
                if row is None:
                    light.append(_skip_row(_skipped_of(outcome)))
                elif isinstance(row, Skipped):
                    light.append(_skip_row(row))
                else:
                    rows.append(row)
            part = self._write_part(key, rows) if rows else None
            light += [{"source": r["source"], "digest": r["digest"], "status": "written", "kind": None,
                       "reason": None, "folder": r["folder"], "part": part, "traceback": None}
                      for r in rows]
        return _light_table(light)

    def _write(self, explained: Explained) -> dict[str, Any] | Skipped:
        """The item's folder (when pictures are asked for) and its Parquet row."""
        folder = None
        if self.pictures:
            try:
                path = write_item_folder(self.domain, explained, self.out, self.run, True)
            except OSError as exc:
                raise OutputError(f"cannot write {self.out}: {exc.strerror or exc}; finished items are "
                                  f"kept, rerun to resume") from None
            except Exception as exc:  # noqa: BLE001 - a rendering bug loses this item only
                return skipped_outcome(explained.item, exc)
            folder, summary = path.name, read_json(path / "summary.json")
        else:
            summary = item_summary(self.domain, explained, self.run, [])
        return _result_row(explained, summary, folder, self.run["run_id"])

    def _write_part(self, key: str, rows: list[dict[str, Any]]) -> str:
        import pyarrow.parquet as pq

        parts = self.out / PARQUET_DIR
        name = f"part-{self.run['run_id']}-{key}.parquet"
        partial = parts / f".partial-{name}-{os.getpid()}"
        try:
            parts.mkdir(parents=True, exist_ok=True)
            pq.write_table(_table(rows), partial)
            os.replace(partial, parts / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OutputError(f"cannot write {parts}: {exc.strerror or exc}; finished items are kept, "
                              f"rerun to resume") from None
        return f"{PARQUET_DIR}/{name}"

    # --- attribute_dataset: a user's rows in, the same rows with the igkit columns out ---------
    def _rows(self, batch: Any) -> Any:
        clash = sorted(set(batch.column_names) & set(COLUMNS))
        if clash:
            raise IGInputError(f"the data set already has column(s) {', '.join(clash)} that igkit adds; "
                               f"rename them first")
        entries: list[Item | BadItem] = []
        for value in batch.column(self.column).to_pylist():
            entries.append(self._read_one(value))
        items = [e for e in entries if isinstance(e, Item)]
        found: dict[str, Any] = {}
        for outcome in self._explain(entries, content_digest(*[i.digest for i in items])):
            if isinstance(outcome, Explained):
                summary = item_summary(self.domain, outcome, self.run, [])
                found[outcome.item.digest] = _result_row(outcome, summary, None, None)
            elif isinstance(outcome, Skipped) and outcome.item is not None:
                found[outcome.item.digest] = _skip_row(outcome)
        rows = []
        for entry in entries:
            if isinstance(entry, BadItem):
                rows.append(_skip_row(Skipped(entry.source, entry.reason)))
            else:
                row = dict(found[entry.digest])
                row.update(source=entry.source, name=entry.name)
                rows.append(row)
        table = _table(rows)
        for name in COLUMNS:
            batch = batch.append_column(table.schema.field(name), table.column(name))
        return batch

    def _read_one(self, value: Any) -> Item | BadItem:
        text = str(value)[:200]
        try:
            found = list(self.domain.read_items([value], **self.settings))
        except IgkitError as exc:
            return BadItem(text, str(exc))
        if len(found) != 1:
            return BadItem(text, f"this value reads as {len(found)} items; give one item per row")
        entry = found[0]
        if entry.source != "argument 1":  # a file: its own name
            return entry
        if isinstance(entry, BadItem):  # a value: the value names it
            return BadItem(text, entry.reason)
        return Item(source=text, value=entry.value, name=entry.name, digest=entry.digest)


def _light_table(light: list[dict[str, Any]]) -> Any:
    """What a window sends back to the driver: one short row per item, no arrays."""
    import pyarrow as pa

    names = ("source", "digest", "status", "kind", "reason", "folder", "part", "traceback")
    table = pa.table({n: pa.array([r.get(n) for r in light], pa.string()) for n in names})
    table = table.append_column("worker", pa.array([f"{os.uname().nodename}:{os.getpid()}"] * len(light)))
    return table.append_column("worker_rss_mib", pa.array([_peak_rss_mib()] * len(light), pa.float64()))


def _peak_rss_mib() -> float:
    """This worker's peak resident memory so far (reported in ``report.json``, for sizing)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _skipped_of(outcome: Any) -> Skipped:
    if isinstance(outcome, Skipped):
        return outcome
    if isinstance(outcome, Duplicate):  # the driver sends each content once; a window never repeats
        return Skipped(outcome.item.source, f"same content as {outcome.first.source}", "input", outcome.item)
    raise TypeError(f"unexpected outcome {outcome!r}")


def _skip_row(skipped: Skipped) -> dict[str, Any]:
    return {"source": skipped.source, "name": skipped.item.name if skipped.item else None,
            "digest": skipped.item.digest if skipped.item else None, "status": "skipped",
            "kind": skipped.kind, "reason": skipped.reason, "folder": None, "part": None,
            "traceback": skipped.traceback, "shapes": [], "attributions": [], "methods": [],
            "method_attributions": []}


def _result_row(explained: Explained, summary: dict[str, Any], folder: str | None,
                run_id: str | None) -> dict[str, Any]:
    attribution = getattr(explained.explanation, "attribution", explained.explanation)
    maps = [a[0].detach().cpu().float().numpy() for a in attribution.result.attribution_tuple]
    target = summary.get("target")
    row = {"run_id": run_id, "source": explained.item.source, "name": explained.item.name,
           "digest": explained.item.digest, "status": "written", "kind": None, "reason": None,
           "folder": folder, "target": target if isinstance(target, str) or target is None
           else json.dumps(target, default=str),
           "summary": json.dumps(summary, default=str), "shapes": [list(m.shape) for m in maps],
           "attributions": maps, "methods": list(attribution.methods),
           "method_attributions": [t[0].detach().cpu().float().numpy()
                                   for tensors in attribution.methods.values() for t in tensors]}
    for key in ("score_input", "score_baseline", "attribution_sum", "completeness_delta",
                "completeness_error", "converged", "steps", "path_points", "method", "seconds"):
        row[key] = summary.get(key)
    return row


def _table(rows: list[dict[str, Any]]) -> Any:
    """Rows as an Arrow table of :func:`row_schema` (attribution arrays without Python lists)."""
    import pyarrow as pa

    schema = row_schema()
    columns = {}
    for f in schema:
        if f.name in ("attributions", "method_attributions"):
            columns[f.name] = _nested([r.get(f.name) or [] for r in rows], np.float32)
        elif f.name == "shapes":
            columns[f.name] = pa.array([r.get(f.name) or [] for r in rows], f.type)
        else:
            columns[f.name] = pa.array([r.get(f.name) for r in rows], f.type)
    return pa.table(columns, schema=schema)


def _nested(per_row: list[list[np.ndarray]], dtype: Any) -> Any:
    """list<list<value>>: per row, one flattened array per input."""
    import pyarrow as pa

    outer, inner, chunks = [0], [0], []
    for arrays in per_row:
        for a in arrays:
            flat = np.ascontiguousarray(a, dtype=dtype).ravel()
            chunks.append(flat)
            inner.append(inner[-1] + flat.size)
        outer.append(outer[-1] + len(arrays))
    values = pa.array(np.concatenate(chunks) if chunks else np.empty(0, dtype))
    lists = pa.ListArray.from_arrays(pa.array(inner, pa.int32()), values)
    return pa.ListArray.from_arrays(pa.array(outer, pa.int32()), lists)


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------
@dataclass
class RayRunReport(RunReport):
    """A :class:`RunReport` that also says how the Ray engine ran (``report.json`` key ``engine``)."""

    engine: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "engine": self.engine}


def connect(address: str | None = None, *, num_cpus: int | None = None, num_gpus: float | None = None
            ) -> bool:
    """Join the cluster at ``address`` (``auto``: the one started on this node with ``ray start``),
    or start a local one; nothing if Ray is already initialised here. True when this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    quiet_ray_logging()
    # the driver's core worker logs a harmless error about actor arguments on every actor pool
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    with _native_stderr_silenced():  # ... and says so once on stderr when told not to
        if address:
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise IGInputError(f"cannot join the Ray cluster at --ray-address {address}: {exc} (is "
                                   f"this node part of it? a cluster with token authentication needs its "
                                   f"token here too, see core/RAY.md)") from None
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
    return True


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null (C++ log lines); Python errors still raise as usual."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (an embedding host): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_ray_logging() -> None:
    """Ray Data's own progress bars and INFO lines would garble igkit's progress line."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for handler in logging.getLogger("ray.data").handlers:
        if getattr(handler, "name", "") == "console" or type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(logging.ERROR)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_to_folder_ray(domain: Domain, items: Iterable[Item | BadItem], out: str | Path, *,
                      settings: dict[str, Any], options: RunOptions, model_source: str | None = None,
                      pictures: bool = True, overwrite: bool = False, show_progress: bool = True,
                      address: str | None = None, workers: int = 2, gpus_per_worker: float = 0.0,
                      threads: int = 1, max_crashes: int = MAX_CRASHES) -> RayRunReport:
    """:func:`igkit.run_folder.run_to_folder` on a Ray cluster: the same ``run.json``,
    ``report.json``, item folders (when ``pictures``), resume and exit codes, plus the Parquet
    data set ``OUT/attributions/``. ``threads`` are torch threads per worker (each reserves as
    many CPUs). Starts a local Ray unless ``address`` is given or Ray is already initialised.
    """
    ray = require_ray()
    items = nonempty(domain, items)
    if gpus_per_worker < 0 or workers < 1 or threads < 1:
        raise IGInputError("--workers and --threads must be at least 1 and --gpus-per-worker at least 0")
    out = Path(out).resolve()
    model = domain.load_model(model_source, **settings)  # the fingerprint, and model errors early
    run = run_fingerprint(domain, model, model_source, settings, options, pictures)
    del model
    previous = previous_run(out) if out.is_dir() else None
    prepare_out(out, run, overwrite)
    parts = out / PARQUET_DIR
    if previous is not None and previous.get("run_id") != run["run_id"]:
        shutil.rmtree(parts, ignore_errors=True)  # --overwrite: the earlier run's rows go too
    done = _done_digests(parts, run["run_id"])

    report = RayRunReport(out, run)
    pending: list[Item] = []
    seen: dict[str, Item] = {}
    for entry in items:
        report.order.setdefault(entry.source, len(report.order))
        if isinstance(entry, BadItem):
            _record_skip(report, Skipped(entry.source, entry.reason))
        elif entry.digest in seen:
            report.duplicates.append(Duplicate(entry, seen[entry.digest]))
        else:
            seen[entry.digest] = entry
            if entry.digest in done:
                folder = folder_name(entry)
                keep = pictures and is_complete(out / folder, entry, run["run_id"])
                report.entries.append(report_entry(entry, "kept", folder if keep else None))
            else:
                pending.append(entry)
    del seen

    cores = _cores()
    started = False
    if not ray.is_initialized() and not address:
        threads = min(threads, max(1, cores // workers))
    window = max(1, domain.max_group) * 4  # the runner's window: the same items share integration calls
    windows = [pending[i:i + window] for i in range(0, len(pending), window)]
    report.engine = {"name": "ray", "address": address or "local", "workers": workers,
                     "threads_per_worker": threads, "gpus_per_worker": gpus_per_worker,
                     "parquet": PARQUET_DIR, "items_per_window": window}
    bar = Progress([], total=len(pending), desc=f"explain {domain.name} (ray, {workers} workers)",
                   enabled=show_progress)
    start = time.perf_counter()
    try:
        if windows:
            started = connect(address, num_cpus=None if address else max(cores, workers * threads),
                              num_gpus=None)
            if not started:
                quiet_ray_logging()
            ds = _window_dataset(ray, windows, run["run_id"])
            ledger = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(Ledger).remote()
            ds = ds.map_batches(Explainer, batch_size=1, batch_format="pyarrow", zero_copy_batch=True,
                                # one window at a time per actor: windows are long, the tail stays balanced
                                compute=ray.data.ActorPoolStrategy(size=min(workers, len(windows)),
                                                                   max_tasks_in_flight_per_actor=1),
                                num_cpus=threads,
                                num_gpus=gpus_per_worker or None,
                                fn_constructor_kwargs=dict(domain=domain, model_source=model_source,
                                                           settings=settings, options=options, run=run,
                                                           out=str(out), pictures=pictures, threads=threads,
                                                           ledger=ledger, max_crashes=max_crashes))
            _consume(ds, report, bar, start)
        report.status = "complete"
    except KeyboardInterrupt:
        raise interrupted(report, bar) from None
    except Exception as exc:
        report.status = "failed"
        found = _igkit_error(exc)
        if found is not None:
            raise found from None
        if type(exc).__module__.split(".")[0] == "ray":  # Ray's own error: its last line says why
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise IgkitError(f"the Ray run stopped: {lines[-1] if lines else type(exc).__name__}; finished "
                             f"items are kept, rerun to resume (--debug shows Ray's traceback; every node "
                             f"needs the same igkit and plugins)") from exc
        raise
    finally:
        seconds = time.perf_counter() - start
        rate = round(report.count("written") / seconds, 3) if seconds else None
        report.engine.update(seconds=round(seconds, 3), items_per_second=rate)
        if report.status in ("complete", "interrupted"):
            resolve_duplicates(report)
            if pictures:
                report.run_files = domain.write_run(out, report.folders, pictures=pictures)
        report.save()
        if started:
            ray.shutdown()
    bar.close()
    return report


def _window_dataset(ray: Any, windows: list[list[Item]], run_id: str) -> Any:
    rows = [{"key": content_digest(run_id, *[i.digest for i in w])[:16], "items": pickle.dumps(w)}
            for w in windows]
    return ray.data.from_items(rows, override_num_blocks=len(rows))


def _consume(ds: Any, report: RayRunReport, bar: Progress, start: float) -> None:
    """Record results as windows finish; ``report.json`` at most every few seconds (it can be big)."""
    batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0))
    try:
        _consume_batches(batches, report, bar, start)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the pipeline (its actors) on an interrupt or an error


def _consume_batches(batches: Iterable[Any], report: RayRunReport, bar: Progress, start: float) -> None:
    busy: set[str] = set()  # worker processes that sent results (a restarted actor is a new one)
    last_save, save_cost = time.perf_counter(), 0.0
    done = 0
    for table in batches:
        for row in table.to_pylist():
            if row["status"] == "error":  # a worker could not go on (its model, the output folder)
                from . import errors

                kind = getattr(errors, row["kind"], IgkitError)
                if not (isinstance(kind, type) and issubclass(kind, IgkitError)):
                    kind = IgkitError
                raise kind(row["reason"])
            if row["status"] == "written":
                entry = {"source": row["source"], "status": "written", "folder": row["folder"],
                         "digest": row["digest"], "part": row["part"]}
                report.entries.append(entry)
            else:
                skipped = Skipped(row["source"], row["reason"], row["kind"], None, row["traceback"])
                _record_skip(report, skipped, digest=row["digest"])
            done += 1
        if table.num_rows:
            busy.update(table.column("worker").to_pylist())
            report.engine["workers_used"] = len(busy)
            peaks = table.column("worker_rss_mib").to_pylist()
            peak = max([*peaks, report.engine.get("worker_peak_rss_mib", 0)])
            report.engine["worker_peak_rss_mib"] = round(peak, 1)
        elapsed = time.perf_counter() - start
        bar.advance(table.num_rows, postfix=f"{done / elapsed:.1f} items/s" if elapsed else "")
        if time.perf_counter() - last_save > max(2.0, 20 * save_cost):
            t = time.perf_counter()
            report.save()
            last_save, save_cost = time.perf_counter(), time.perf_counter() - t


def _record_skip(report: RunReport, skipped: Skipped, digest: str | None = None) -> None:
    entry = {"source": skipped.source, "status": "skipped", "kind": skipped.kind, "reason": skipped.reason}
    digest = digest or (skipped.item.digest if skipped.item is not None else None)
    if digest:
        entry["digest"] = digest
    if skipped.traceback:
        entry["traceback"] = skipped.traceback
    report.entries.append(entry)
    print(f"skipped {skipped.source}: {skipped.reason}", file=sys.stderr)


def _done_digests(parts: Path, run_id: str) -> set[str]:
    """Items with a Parquet row of this run (resume); other runs' part files are removed."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    if not parts.is_dir():
        return done
    for path in sorted(parts.iterdir()):
        if path.name.startswith(".partial-") or not path.name.startswith(f"part-{run_id}-"):
            path.unlink()  # a part being written when a worker died, or another run's rows
            continue
        try:
            done.update(pq.read_table(path, columns=["digest"]).column("digest").to_pylist())
        except Exception:  # noqa: BLE001 - unreadable: its items are computed again
            path.unlink()
    return done


def _igkit_error(exc: BaseException) -> IgkitError | None:
    """The igkit error inside a Ray error (a model that fails to load on a worker, a full disk)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, IgkitError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


# --------------------------------------------------------------------------------------------
# the Python entry point for people already in Ray
# --------------------------------------------------------------------------------------------
def attribute_dataset(ds: Any, domain: str | Domain, *, column: str = "item", model_source: str | None = None,
                      methods: Sequence[str] = (), integration: dict[str, Any] | None = None,
                      workers: int = 2, gpus_per_worker: float = 0.0, threads: int = 1,
                      batch_size: int | None = None, **settings: Any) -> Any:
    """``ds`` with the igkit columns added (lazy, like every Ray Data transform).

    ``column`` holds one item per row, as the domain reads it (a SMILES, a sentence, an image
    path). Each of ``workers`` actors loads the model once (``model_source`` or the domain's
    default) and attributes ``batch_size`` rows at a time (default: the domain's window,
    ``max_group`` × 4) through the runner; a row that cannot be attributed gets
    ``status == "skipped"`` and the reason. Columns: see ``core/RAY.md``, "Parquet layout".
    """
    ray = require_ray()
    from .api import default_settings, resolve_domain, run_options

    domain = resolve_domain(domain)
    settings = default_settings(domain, **settings)
    options = run_options(domain, methods, **(integration or {}))
    if column not in ds.schema().names:
        raise IGInputError(f"the data set has no column {column!r}; its columns are "
                           f"{', '.join(ds.schema().names)}")
    ledger = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(Ledger).remote()
    return ds.map_batches(Explainer, batch_size=batch_size or max(1, domain.max_group) * 4,
                          batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
                          num_cpus=threads, num_gpus=gpus_per_worker or None,
                          fn_constructor_kwargs=dict(domain=domain, model_source=model_source,
                                                     settings=settings, options=options, threads=threads,
                                                     ledger=ledger, column=column))
