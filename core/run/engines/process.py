"""``--engine process``: a pool of processes on this machine, each loading the model once.

The smallest engine beside the local one: windows of items (see :class:`Windows`) go to
``workers`` processes started fresh (``spawn``: no torch state is forked), each computes and
writes its items with :func:`igkit.run.engines.work` and sends back their report entries.
The processes are kept for later runs of this process (their models stay loaded).

A worker that dies (a crash in native code, a kill for memory) is replaced by a fresh one:
the items of its window already on disk count as written, the others are retried one at a
time, and an item on which a worker died ``max_crashes`` times alone is skipped with the
reason (kind ``resources`` when the process was killed by SIGKILL, as the kernel's
out-of-memory killer does; ``internal`` otherwise). The run goes on; nothing is lost and
nothing is recorded twice. Workers that keep dying without finishing any window (a model
that crashes on load) stop the run instead.
"""
from __future__ import annotations

import atexit
import collections
import multiprocessing
import multiprocessing.connection
import pickle
import signal
from pathlib import Path
from typing import Any, Callable, Iterator

from igkit.domain import Item
from igkit.errors import IGInputError, IgkitError
from igkit.run.engines import Engine, Job, Windows, skipped_entry, work, written_entry
from igkit.run.run_layout import folder_name, is_complete, remove_partials
from igkit.run.runner import Skipped


#: an item is skipped once a worker has died this many times while computing it alone
MAX_CRASHES = 2
#: workers dying this many times before any window of the run finished stop the run (the model
#: crashes, not an item)
MAX_DEATHS_BEFORE_ANY = 8
#: this process's workers by (workers, threads); a later run reuses them (models stay loaded)
_POOLS: dict[tuple[int, int], list["_Worker"]] = {}
_loaded: dict[str, Any] = {}  # in a worker: the model of the last run and its key


class ProcessEngine(Engine):
    """``workers`` processes of ``threads`` torch threads each."""

    name = "process"

    def __init__(self, *, workers: int = 2, threads: int = 1, max_crashes: int = MAX_CRASHES) -> None:
        if workers < 1 or threads < 1:
            raise IGInputError("--workers and --threads must be at least 1")
        self.workers, self.threads, self.max_crashes = workers, threads, max_crashes
        self.replaced = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "threads_per_worker": self.threads,
                "workers_replaced": self.replaced}

    def run(self, job: Job, model: Any, items: Iterator[Item],
            on_item: Callable[[Item | None], None]) -> Iterator[dict[str, Any]]:
        windows = Windows(items, max(1, job.domain.max_group) * 4)
        pool = _pool(self.workers, self.threads)
        retry: collections.deque[list[Item]] = collections.deque()
        crashes: collections.Counter[str] = collections.Counter()
        busy: dict[Any, _Worker] = {}
        deaths, answered, finished = 0, False, False
        try:
            while True:
                for index, worker in enumerate(pool):
                    if worker.batch is not None:
                        continue
                    idle = sum(w.batch is None for w in pool)
                    batch = retry.popleft() if retry else windows.next(idle)
                    if not batch:
                        break
                    if not worker.send(job, batch):  # died while idle (between runs)
                        pool[index] = worker = self._replace(worker)
                        worker.send(job, batch)
                    busy[worker.conn] = worker
                if not busy:
                    finished = True
                    return
                for conn in multiprocessing.connection.wait(list(busy)):
                    worker = busy.pop(conn)
                    batch, message = worker.batch, worker.receive()
                    if message is not None:
                        answered = True
                        kind, payload = message
                        if kind == "error":
                            raise payload
                        yield from payload
                        continue
                    deaths += 1
                    how = worker.death()
                    remove_partials(Path(job.out), worker.process.pid)
                    if not answered and deaths >= MAX_DEATHS_BEFORE_ANY:
                        raise IgkitError(f"worker processes died {deaths} times before any item finished "
                                         f"(last: {how}): the model or the libraries it uses crash. Run "
                                         f"with --engine local to see the error")
                    pool[pool.index(worker)] = self._replace(worker)
                    yield from self._lost(job, batch, retry, crashes, how)
        finally:
            if not finished:  # interrupted or failed: stop the work in flight now
                _POOLS.pop((self.workers, self.threads), None)
                for worker in pool:
                    worker.stop()
                    remove_partials(Path(job.out), worker.process.pid)  # stopped while writing

    def _replace(self, worker: "_Worker") -> "_Worker":
        """A fresh worker in place of one that died."""
        worker.stop()
        self.replaced += 1
        return _Worker(self.threads)

    def _lost(self, job: Job, batch: list[Item], retry: collections.deque, crashes: collections.Counter,
              how: str) -> Iterator[dict[str, Any]]:
        """A window whose worker died: items on disk are done, the rest retried alone, an item
        that killed its worker ``max_crashes`` times alone skipped."""
        out = Path(job.out)
        for item in batch:
            folder = out / folder_name(item)
            if is_complete(folder, item, job.run["run_id"]):
                yield written_entry(item, "written", folder.name)
                continue
            if len(batch) == 1:
                crashes[item.digest] += 1
            if crashes[item.digest] < self.max_crashes:
                retry.append([item])
                continue
            killed = "SIGKILL" in how
            yield skipped_entry(Skipped(
                item.source, f"the worker process died {crashes[item.digest]} times while computing this "
                             f"item ({how}); skipped. "
                             + ("If memory ran out, lower --batch-size or --workers" if killed else
                                "This is a crash in native code: please report it with this input"),
                "resources" if killed else "internal", item))


class _Worker:
    """One worker process and the pipe to it; ``batch`` is the window it is computing."""

    def __init__(self, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, threads), name="igkit-worker")
        self.process.start()
        theirs.close()  # only the child holds its end: the pipe reads as closed when the child dies
        self.batch: list[Item] | None = None

    def send(self, job: Job, batch: list[Item]) -> bool:
        """Hand over a window; False if the process is gone."""
        try:
            self.conn.send((job, batch))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return False
        self.batch = batch
        return True

    def receive(self) -> tuple[str, Any] | None:
        """``("entries", [...])`` or ``("error", exception)``; None when the process died."""
        try:
            message = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            return None
        self.batch = None
        return message

    def death(self) -> str:
        """How the process ended, in words (after it died)."""
        self.process.join(timeout=10)
        code = self.process.exitcode
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def shutdown() -> None:
    """Stop every worker of this process (at exit; tests call it to leave no process behind)."""
    while _POOLS:
        for worker in _POOLS.popitem()[1]:
            worker.stop()


atexit.register(shutdown)


def _pool(workers: int, threads: int) -> list[_Worker]:
    """This process's workers for ``workers`` × ``threads``, kept for later runs; dead ones replaced."""
    pool = _POOLS.setdefault((workers, threads), [])
    for dead in [w for w in pool if not w.process.is_alive()]:
        dead.stop()
        pool.remove(dead)
    pool += [_Worker(threads) for _ in range(workers - len(pool))]
    return pool


def _serve(conn: Any, threads: int) -> None:
    """A worker's loop: windows in, report entries (or the error that stops the run) out."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops the workers
    torch.set_num_threads(threads)
    while True:
        try:
            job, batch = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        try:
            conn.send(("entries", _explain(job, batch)))
        except Exception as exc:  # noqa: BLE001 - the driver raises it: the run stops with the reason
            conn.send(("error", _picklable(exc)))


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception class whose arguments do not round-trip
        return IgkitError(f"{type(exc).__name__}: {exc}")
    return exc


def _model(job: Job) -> Any:
    """The job's model, loaded once per process and run settings."""
    key = (type(job.domain).__module__, type(job.domain).__qualname__, job.model_source,
           repr(sorted(job.settings.items())), job.run["model_fingerprint"])
    if _loaded.get("key") != key:
        _loaded.clear()
        _loaded["model"] = job.domain.load_model(job.model_source, **job.settings)
        _loaded["key"] = key
    return _loaded["model"]


def _explain(job: Job, batch: list[Item]) -> list[dict[str, Any]]:
    import torch

    model = _model(job)
    with torch.inference_mode(False), torch.enable_grad():
        return list(work(job, model, batch))


ENGINE = ProcessEngine
