"""The one path from an item to its result, used by the CLI, the Python API, the app and Ray.

Items stream in; each is prepared by its domain; prepared items of one group share an
integration call (their path points share passes); each item's result comes out as
soon as its group is done. A bad item becomes a :class:`Skipped` with a reason and
never stops the others: the user's mistakes (``IGInputError``) as ``input``, a model
that produces NaN as ``model``, memory as ``resources``, and anything unexpected as
``internal`` with its traceback.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from .domain import Attribution, BadItem, Domain, Item, Prepared
from .errors import IGInputError, IgkitError, NonFiniteError
from .integrated import integrated_gradients
from .methods import attribute, get_method
from .options import Integration


@dataclass
class Explained:
    """An item and its domain explanation."""

    item: Item
    explanation: Any


@dataclass
class Skipped:
    """An item (or unreadable input) that has no result, and why.

    ``kind``: ``input`` (fix the input), ``model`` (the model misbehaves on it),
    ``resources`` (out of memory), ``internal`` (a bug: ``traceback`` says where).
    """

    source: str
    reason: str
    kind: str = "input"
    item: Item | None = None
    traceback: str | None = None


@dataclass
class Duplicate:
    """An item with the same content as an earlier one: it shares that item's result."""

    item: Item
    first: Item


Outcome = Explained | Skipped | Duplicate


@dataclass(frozen=True)
class RunOptions:
    """What a run computes beyond the domain's settings: integration, extra methods."""

    integration: Integration = field(default_factory=Integration)
    methods: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"integration": self.integration.describe(), "methods": list(self.methods)}


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Extra methods computed beside integrated gradients (which is always computed)."""
    names = tuple(dict.fromkeys(m.strip() for m in methods if m.strip()))
    for name in names:
        if name == "integrated_gradients":
            raise IGInputError("integrated_gradients is always computed; list only the other methods")
        get_method(name)
    return names


def explain_stream(domain: Domain, model: Any, items: Iterable[Item | BadItem], settings: dict[str, Any],
                   options: RunOptions, *, already_done: Callable[[Item], bool] = lambda item: False,
                   on_item: Callable[[Item | None], None] = lambda item: None) -> Iterator[Outcome]:
    """Outcomes of ``items`` as their groups finish (at most ``domain.max_group`` items per call).

    Items for which ``already_done`` is true are not computed (resume). ``on_item`` is
    told which item is being worked on (for progress).
    """
    seen: dict[str, Item] = {}
    window: list[tuple[Item, Prepared]] = []
    limit = max(1, domain.max_group) * 4
    for entry in items:
        if isinstance(entry, BadItem):
            yield Skipped(entry.source, entry.reason)
            continue
        if entry.digest in seen:
            yield Duplicate(entry, seen[entry.digest])
            continue
        seen[entry.digest] = entry
        if already_done(entry):
            continue
        try:
            prepared = domain.prepare(model, entry.value, **settings)
        except Exception as exc:  # noqa: BLE001 - every failure is reported per item
            yield _skipped(entry, exc)
            continue
        window.append((entry, prepared))
        if len(window) >= limit:
            yield from _run_window(domain, window, options, on_item)
            window = []
    if window:
        yield from _run_window(domain, window, options, on_item)


def _run_window(domain: Domain, window: list[tuple[Item, Prepared]], options: RunOptions,
                on_item: Callable[[Item | None], None]) -> Iterator[Outcome]:
    for group in _groups(window, domain.max_group):
        on_item(group[0][0])
        try:
            outcomes = [Explained(item, domain.explanation(a))
                        for item, a in zip([g[0] for g in group], attribute_group(domain, group, options))]
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001
            if len(group) == 1:
                outcomes = [_skipped(group[0][0], exc)]
            else:  # isolate the culprit: the others still get their results
                outcomes = [o for single in group for o in _run_window(domain, [single], options, on_item)]
        yield from outcomes


def _groups(window: list[tuple[Item, Prepared]], size: int) -> list[list[tuple[Item, Prepared]]]:
    """Items of one group key together (in order of first appearance), at most ``size`` per call."""
    by_key: dict[Any, list[tuple[Item, Prepared]]] = {}
    singles: list[list[tuple[Item, Prepared]]] = []
    order: list[Any] = []
    for pair in window:
        key = pair[1].group
        if key is None:
            singles.append([pair])
            order.append(("single", len(singles) - 1))
            continue
        if key not in by_key:
            by_key[key] = []
            order.append(("group", key))
        by_key[key].append(pair)
    groups = []
    for kind, key in order:
        members = singles[key] if kind == "single" else by_key[key]
        groups += [members[i:i + max(1, size)] for i in range(0, len(members), max(1, size))]
    return groups


def attribute_group(domain: Domain, group: Sequence[tuple[Item, Prepared]], options: RunOptions
                    ) -> list[Attribution]:
    """Integrated gradients (and the extra methods) for items that share one call."""
    prepared = [p for _, p in group]
    batch = domain.collate(prepared)
    keywords = options.integration.keywords()
    if keywords.get("batch_size") is None:
        keywords["batch_size"] = batch.batch_size
    start = time.perf_counter()
    result = integrated_gradients(batch.forward, batch.inputs, batch.baselines, target=batch.target,
                                  forward_args=batch.forward_args, **keywords)
    extra = {name: _as_tuple(attribute(name, batch.forward, batch.inputs, batch.baselines,
                                       target=batch.target, forward_args=batch.forward_args,
                                       batch_size=keywords["batch_size"],
                                       **domain.method_options(name, batch)))
             for name in options.methods}
    seconds = (time.perf_counter() - start) / len(group)
    return [Attribution(item=item, prepared=p, result=result.example(e),
                        methods={name: tuple(a[e:e + 1] for a in maps) for name, maps in extra.items()},
                        seconds=seconds)
            for e, (item, p) in enumerate(group)]


def _as_tuple(attributions: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return attributions if isinstance(attributions, tuple) else (attributions,)


def _skipped(item: Item, exc: BaseException) -> Skipped:
    if isinstance(exc, NonFiniteError):
        return Skipped(item.source, str(exc), "model", item)
    if isinstance(exc, IgkitError):
        return Skipped(item.source, str(exc), "input", item)
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return Skipped(item.source, "ran out of memory on this item; lower --batch-size (path points "
                                    "per pass) or the domain's size limit", "resources", item)
    return Skipped(item.source, f"internal error: {type(exc).__name__}: {exc}", "internal", item,
                   "".join(traceback.format_exception(exc)))
