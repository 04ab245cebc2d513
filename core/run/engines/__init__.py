"""Engines: what turns items into written item folders, here or on other machines.

The driver (:func:`igkit.run.run_folder.run_to_folder`) owns the run folder: it reads the
items, decides which need computing (resume per item by content digest), and keeps
``report.json``, the run tables and the exit code. An engine only takes the stream of
items to compute and hands back one report entry per item, in any order, as items
finish. Every engine computes with :func:`work`, which runs the one per-item path
(:func:`igkit.run.runner.explain_stream`) and writes each item's folder, so engines differ
only in where that happens:

- ``local`` (:mod:`igkit.run.engines.local`): in this process;
- ``process`` (:mod:`igkit.run.engines.process`): a pool of processes on this machine;
- ``ray`` (:mod:`igkit.run.engines.ray`): Ray actors, each loading the model once.

A new engine is a subclass of :class:`Engine` with one method, :meth:`Engine.run`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from igkit.domain import BadItem, Domain, Explanation, Item
from igkit.errors import IGInputError, OutputError
from igkit.run.run_layout import write_item_folder
from igkit.run.runner import RunOptions, Skipped, explain_stream, skipped_outcome

#: the engines ``--engine`` offers, and the module that holds each
ENGINES = {"local": "local", "process": "process", "ray": "ray"}


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to compute and write items of one run (picklable)."""

    domain: Domain
    model_source: str | None
    settings: dict[str, Any]
    options: RunOptions
    run: dict[str, Any]
    out: str
    pictures: bool
    units: bool


class Engine:
    """Turns the items to compute into report entries (see :func:`work`)."""

    name = ""

    def check(self, job: Job) -> None:
        """Refuse unusable engine options in seconds, before the run folder is touched."""

    def run(self, job: Job, model: Any, items: Iterator[Item],
            on_item: Callable[[Item | None], None]) -> Iterator[dict[str, Any]]:
        """One report entry per item of ``items`` (in any order). ``model`` is the driver's
        loaded model; ``on_item`` may be told which item is being computed (progress)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What ``report.json`` says about how this engine ran (``engine``)."""
        return {"name": self.name}


@dataclass
class Windows:
    """Cuts the item stream into windows for workers: ``size`` items (the runner's window,
    ``max_group × 4``) while the stream lasts, then what is left split evenly over the idle
    workers, so a small run uses every worker."""

    items: Iterator[Item]
    size: int
    buffer: list[Item] = field(default_factory=list)
    exhausted: bool = False

    def next(self, idle: int) -> list[Item]:
        """The next window for one of ``idle`` idle workers; empty when every item was handed out."""
        while not self.exhausted and len(self.buffer) < self.size * idle:
            entry = next(self.items, None)
            self.exhausted = entry is None
            if entry is not None:
                self.buffer.append(entry)
        size = -(-len(self.buffer) // idle) if self.exhausted else self.size
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        return batch


def get_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` with its options (``workers``, ``address``, ... for Ray)."""
    if name not in ENGINES:
        raise IGInputError(f"no engine named {name!r}; engines are {', '.join(ENGINES)}")
    import importlib

    module = importlib.import_module(f"{__name__}.{ENGINES[name]}")
    return module.ENGINE(**options)


def work(job: Job, model: Any, items: Iterable[Item | BadItem],
         on_item: Callable[[Item | None], None] = lambda item: None) -> Iterator[dict[str, Any]]:
    """Compute ``items`` with the runner and write each item's folder; yield its report entry.

    A failure to write the folder of one item (a rendering bug) skips that item only; a
    disk that cannot be written stops the run (:class:`~igkit.errors.OutputError`).
    """
    out = Path(job.out)
    stream = explain_stream(job.domain, model, items, job.settings, job.options, on_item=on_item)
    for outcome in stream:
        if isinstance(outcome, Explanation):
            try:
                folder = write_item_folder(job.domain, outcome, out, job.run, job.pictures, job.units)
            except OSError as exc:
                raise OutputError(f"cannot write {out}: {exc.strerror or exc}; finished items are kept, "
                                  f"rerun to resume") from None
            except Exception as exc:  # noqa: BLE001 - a rendering bug loses this item only
                outcome = skipped_outcome(outcome.item, exc)
            else:
                yield written_entry(outcome.item, "written", folder.name)
                continue
        if isinstance(outcome, Skipped):
            yield skipped_entry(outcome)


def written_entry(item: Item, status: str, folder: str) -> dict[str, Any]:
    """The report entry of an item that has a folder (``written``, ``kept``, ``duplicate``)."""
    return {"source": item.source, "status": status, "folder": folder, "digest": item.digest}


def skipped_entry(skipped: Skipped) -> dict[str, Any]:
    """The report entry of an item without a result, with what to do about it."""
    entry = {"source": skipped.source, "status": "skipped", "kind": skipped.kind, "reason": skipped.reason}
    if skipped.item is not None:
        entry["digest"] = skipped.item.digest
    if skipped.traceback:
        entry["traceback"] = skipped.traceback
    return entry
