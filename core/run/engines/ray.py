"""``--engine ray``: items computed by Ray actors, each loading the model once (docs/ray.md).

The driver's item stream is cut into windows (``max_group × 4`` items, the local runner's
window; the last items are spread evenly over the idle workers, so a small run uses every
worker). Each actor runs :func:`igkit.run.engines.work` on its window: the runner's per-item
path, then the item folder written where it computes (``--out`` must be on storage every
node shares). One window at a time per actor, so a worker that dies (a crash in native
code, a kill for memory) takes only its own window with it: the items of that window not
yet on disk are retried one by one on the restarted actor, and an item that killed its
worker :data:`MAX_CRASHES` times is skipped with the reason. Nothing is lost or written
twice: the driver records each item once.

Ray is optional (``pip install 'igkit[ray]'``) and imported only when used.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from igkit.domain import Item
from igkit.errors import IGInputError, IgkitError, ModelError
from igkit.run.engines import Engine, Job, Windows, skipped_entry, work, written_entry
from igkit.run.run_layout import folder_name, is_complete, remove_partials
from igkit.run.runner import Skipped

INSTALL_HINT = "--engine ray needs Ray: pip install 'igkit[ray]'"
#: an item is skipped once a worker has died this many times while computing it alone
MAX_CRASHES = 2
#: seconds to wait for the head node of ``--ray-address`` to answer
CONNECT_TIMEOUT = 5.0
#: live actors per Ray session, threads and GPUs: a later run in the same session reuses them
_POOL: dict[tuple[Any, ...], list[Any]] = {}


def ray_guide() -> str:
    """Where the Ray guide is on this installation (cited by error messages): ``igkit/docs/ray.md``
    when installed (package data), ``docs/ray.md`` in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    installed, checkout = package / "docs" / "ray.md", package.parent / "docs" / "ray.md"
    return str(installed if installed.is_file() or not checkout.is_file() else checkout)


def require_ray() -> Any:
    """The ``ray`` module, or the error that says how to install it."""
    try:
        import pyarrow  # noqa: F401
        import ray
    except ImportError:
        raise IGInputError(INSTALL_HINT) from None
    return ray


class RayEngine(Engine):
    """``workers`` actors of ``threads`` torch threads (and CPUs) and ``gpus_per_worker`` GPUs
    each, on the cluster at ``address`` or on a local Ray started for the run (and stopped after)."""

    name = "ray"

    def __init__(self, *, workers: int = 2, address: str | None = None, gpus_per_worker: float = 0.0,
                 threads: int = 1, max_crashes: int = MAX_CRASHES) -> None:
        require_ray()  # the install hint before any model is loaded
        self.workers, self.address, self.gpus, self.threads = workers, address, gpus_per_worker, threads
        self.max_crashes = max_crashes
        self.used: set[tuple[str, int]] = set()  # (node id, process id) of the workers that computed
        self.peak_rss = 0.0
        self.window = 0

    def check(self, job: Job) -> None:
        if self.gpus < 0 or self.workers < 1 or self.threads < 1:
            raise IGInputError("--workers and --threads must be at least 1 and --gpus-per-worker at least 0")
        if self.address and self.address != "auto":
            check_address(self.address)
        if self.gpus > 0 and not self.address and not _local_gpus():
            raise IGInputError(f"--gpus-per-worker {self.gpus:g}: this machine has no GPU Ray can use; "
                               f"leave the option out to run on CPUs, or give --ray-address of a cluster "
                               f"with GPUs")

    def describe(self) -> dict[str, Any]:
        return {"name": "ray", "address": self.address or "local", "workers": self.workers,
                "threads_per_worker": self.threads, "gpus_per_worker": self.gpus,
                "items_per_window": self.window, "workers_used": len(self.used),
                "nodes_used": len({node for node, _ in self.used}),
                "worker_peak_rss_mib": round(self.peak_rss, 1)}

    def run(self, job: Job, model: Any, items: Iterator[Item],
            on_item: Callable[[Item | None], None]) -> Iterator[dict[str, Any]]:
        ray = require_ray()
        first = next(items, None)
        if first is None:  # every item was finished already: Ray is not even started
            return
        started = self._connect(ray)
        finished = False
        try:
            check_gpus(ray, self.gpus)
            actors = self._actors(ray)
            yield from self._schedule(ray, ray.put(job), job, actors, itertools.chain([first], items))
            finished = True
        finally:
            if not finished:  # interrupted or failed: stop the work in flight now
                stopped = _POOL.pop(self._pool_key(ray), [])
                for actor in stopped:
                    ray.kill(actor, no_restart=True)
                _wait_until_dead(ray, stopped)
                remove_partials(Path(job.out))   # what the stopped workers were writing: nothing half
            if started:
                _POOL.clear()
                ray.shutdown()

    def _pool_key(self, ray: Any) -> tuple[Any, ...]:
        """This Ray session (job ids repeat across sessions; the driver's node id does not)."""
        context = ray.get_runtime_context()
        return context.get_node_id(), context.get_job_id(), self.threads, self.gpus

    def _actors(self, ray: Any) -> list[Any]:
        """``workers`` actors: those of an earlier run in this Ray session (their models stay
        loaded), and new ones as needed."""
        pool = _POOL.setdefault(self._pool_key(ray), [])
        worker = ray.remote(_Worker).options(num_cpus=self.threads, num_gpus=self.gpus or None,
                                             max_restarts=-1, max_task_retries=0)
        pool += [worker.remote(self.threads) for _ in range(self.workers - len(pool))]
        return pool[:self.workers]

    def _connect(self, ray: Any) -> bool:
        if not ray.is_initialized() and not self.address:
            self.threads = min(self.threads, max(1, _cores() // self.workers))
        return connect(self.address, num_cpus=None if self.address else max(_cores(), self.workers * self.threads))

    def _schedule(self, ray: Any, job_ref: Any, job: Job, actors: list[Any], items: Iterator[Item]
                  ) -> Iterator[dict[str, Any]]:
        """Windows to idle actors, entries back as windows finish, lost windows retried per item."""
        self.window = max(1, job.domain.max_group) * 4
        idle, running = list(actors), {}
        retry: collections.deque[list[Item]] = collections.deque()
        crashes: collections.Counter[str] = collections.Counter()
        windows = Windows(items, self.window)
        while True:
            while idle:
                batch = retry.popleft() if retry else windows.next(len(idle))
                if not batch:
                    break
                actor = idle.pop()
                running[actor.explain.remote(job_ref, batch)] = (actor, batch)
            if not running:
                return
            [ref], _ = ray.wait(list(running), num_returns=1)
            actor, batch = running.pop(ref)
            idle.append(actor)
            try:
                node, pid, rss, entries = ray.get(ref)
            except ray.exceptions.RayActorError:  # the worker process died; the actor restarts
                _wait_until_alive(ray, actor)  # a window sent sooner would fail unrun
                yield from self._lost(job, batch, retry, crashes)
                continue
            except ray.exceptions.RayError as exc:
                raise _as_igkit_error(exc) from None
            self.used.add((node, pid))
            self.peak_rss = max(self.peak_rss, rss)
            yield from entries

    def _lost(self, job: Job, batch: list[Item], retry: collections.deque, crashes: collections.Counter
              ) -> Iterator[dict[str, Any]]:
        """A window whose worker died: items on disk are done, the rest retried alone."""
        out = Path(job.out)
        for item in batch:
            folder = out / folder_name(item)
            if is_complete(folder, item, job.run["run_id"]):
                yield written_entry(item, "written", folder.name)
            elif len(batch) > 1:
                retry.append([item])
            else:
                crashes[item.digest] += 1
                if crashes[item.digest] < self.max_crashes:
                    retry.append([item])
                else:
                    yield skipped_entry(Skipped(
                        item.source, f"the worker process died {crashes[item.digest]} times while computing "
                                     f"this item (a crash in native code, or killed for memory); skipped",
                        "internal", item))


def _wait_until_alive(ray: Any, actor: Any, seconds: float = 120.0) -> None:
    """Block until a restarting actor answers again (a call sent sooner would fail unrun)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ray.get(actor.ready.remote(), timeout=10)
            return
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            if time.monotonic() > deadline:
                raise IgkitError(f"a Ray worker did not come back within {seconds:.0f} s after its "
                                 f"process died; finished items are kept, rerun to resume") from None
            time.sleep(0.5)


def _wait_until_dead(ray: Any, actors: list[Any], seconds: float = 30.0) -> None:
    """Block until killed actors are gone (a kill is asynchronous: until then a worker may still be
    writing an item folder), or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    for actor in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(actor.ready.remote(), timeout=1)
            except ray.exceptions.RayActorError:
                break
            except ray.exceptions.GetTimeoutError:
                continue
            time.sleep(0.05)


class _Worker:
    """A Ray actor: computes and writes windows of items, loading each run's model once."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.loaded: tuple[str, Any] | None = None  # (model key, model)

    def _model(self, job: Job) -> Any:
        kind = type(job.domain)
        key = json.dumps([kind.__module__, kind.__qualname__, job.model_source, job.settings,
                          job.run["model_fingerprint"]], sort_keys=True, default=str)
        if self.loaded is None or self.loaded[0] != key:
            self.loaded = None
            model = job.domain.load_model(job.model_source, **job.settings)
            if job.domain.model_fingerprint(model) != job.run["model_fingerprint"]:
                raise ModelError(f"a Ray worker on {os.uname().nodename} loaded a different model "
                                 f"({job.model_source or 'the default'}) than the driver; give every "
                                 f"node the same model file")
            self.loaded = (key, model)
        return self.loaded[1]

    def ready(self) -> bool:
        return True

    def explain(self, job: Job, batch: list[Item]) -> tuple[str, int, float, list[dict[str, Any]]]:
        import ray
        import torch

        model = self._model(job)
        with torch.inference_mode(False), torch.enable_grad():  # IG needs gradients
            entries = list(work(job, model, batch))
        return ray.get_runtime_context().get_node_id(), os.getpid(), _peak_rss_mib(), entries


def check_address(address: str) -> None:
    """Refuse in seconds a ``--ray-address`` that does not resolve or does not answer."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise IGInputError(f"--ray-address {address}: give the head node as HOST:PORT (e.g. 10.0.0.5:6379, "
                           f"printed by `ray start --head`), or auto for the cluster this node joined")
    try:
        socket.getaddrinfo(host, int(port))
    except socket.gaierror:
        raise IGInputError(f"--ray-address {address}: the host name {host!r} does not resolve; check the "
                           f"spelling, or use the head node's IP address") from None
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise IGInputError(f"--ray-address {address}: nothing answers at {host}:{port} "
                           f"({exc.strerror or exc}); start the cluster (`ray start --head` on {host}) or "
                           f"check the port and firewall, see {ray_guide()}") from None


def check_gpus(ray: Any, gpus_per_worker: float) -> None:
    """Actors asking for GPUs a cluster does not have would wait forever: refuse instead."""
    have = ray.cluster_resources().get("GPU", 0)
    if gpus_per_worker > 0 and have < gpus_per_worker:
        raise IGInputError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {have:g} GPU(s); "
                           f"leave the option out to run on CPUs, or add GPU nodes")


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` joined on this node),
    or start a local one; nothing if Ray is already initialised here. True when this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # C++ lines would garble the progress line
    with _native_stderr_silenced():
        if address:
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise IGInputError(f"cannot join the Ray cluster at --ray-address {address}: {exc} (is "
                                   f"this node part of it? see {ray_guide()})") from None
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
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


def _as_igkit_error(exc: BaseException) -> IgkitError:
    """The igkit error inside a Ray error (a model that fails to load on a worker, a full disk),
    else one sentence from Ray's own."""
    cause: BaseException | None = exc
    for _ in range(20):
        if cause is None:
            break
        inner = getattr(cause, "cause", None)  # a RayTaskError holds the worker's own exception
        if isinstance(inner, BaseException) and inner is not cause:
            cause = inner
            continue
        if isinstance(cause, IgkitError):
            return cause
        cause = cause.__cause__ or cause.__context__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return IgkitError(f"the Ray run stopped: {lines[-1] if lines else type(exc).__name__}; finished items "
                      f"are kept, rerun to resume (every node needs the same igkit and plugins)")


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _peak_rss_mib() -> float:
    """This worker's peak resident memory so far (``report.json``, for sizing workers)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


ENGINE = RayEngine
