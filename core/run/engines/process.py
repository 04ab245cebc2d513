"""``--engine process``: a pool of processes on this machine, each loading the model once.

The smallest engine beside the local one: windows of items (see :class:`Windows`) go to
``workers`` processes started fresh (``spawn``: no torch state is forked and kept for later
runs of this process), each computes and writes its items with :func:`igkit.run.engines.work`
and sends back their report entries. A process that dies stops the run with the reason;
finished items are kept for the rerun.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import multiprocessing
from typing import Any, Callable, Iterator

from igkit.domain import Item
from igkit.errors import IGInputError, IgkitError
from igkit.run.engines import Engine, Job, Windows, work

#: this process's pools by (workers, threads); a later run reuses one (its models stay loaded)
_POOLS: dict[tuple[int, int], concurrent.futures.ProcessPoolExecutor] = {}
_loaded: dict[str, Any] = {}  # in a pool process: the model of the last run and its key


class ProcessEngine(Engine):
    """``workers`` processes of ``threads`` torch threads each."""

    name = "process"

    def __init__(self, *, workers: int = 2, threads: int = 1) -> None:
        if workers < 1 or threads < 1:
            raise IGInputError("--workers and --threads must be at least 1")
        self.workers, self.threads = workers, threads

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "threads_per_worker": self.threads}

    def run(self, job: Job, model: Any, items: Iterator[Item],
            on_item: Callable[[Item | None], None]) -> Iterator[dict[str, Any]]:
        windows = Windows(items, max(1, job.domain.max_group) * 4)
        pool = _pool(self.workers, self.threads)
        running: set[concurrent.futures.Future] = set()
        finished = False
        try:
            while True:
                while len(running) < self.workers:
                    batch = windows.next(self.workers - len(running))
                    if not batch:
                        break
                    running.add(pool.submit(_explain, job, batch))
                if not running:
                    finished = True
                    return
                done, running = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
                for future in done:
                    yield from _entries(future)
        finally:
            if not finished:  # interrupted or failed: stop the work in flight now
                _POOLS.pop((self.workers, self.threads), None)
                processes = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.terminate()


def shutdown() -> None:
    """Stop every pool of this process (at exit; tests call it to leave no process behind)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)


def _pool(workers: int, threads: int) -> concurrent.futures.ProcessPoolExecutor:
    """The pool of this process for ``workers`` × ``threads``: kept for later runs (models stay loaded)."""
    key = (workers, threads)
    if key not in _POOLS:
        _POOLS[key] = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=(threads,))
    return _POOLS[key]


def _entries(future: concurrent.futures.Future) -> list[dict[str, Any]]:
    try:
        return future.result()
    except concurrent.futures.process.BrokenProcessPool:
        raise IgkitError("a worker process died (a crash in native code, or killed for memory); finished "
                         "items are kept: rerun to resume, or use --engine ray, which retries such items "
                         "one by one") from None


def _start(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


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
