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

from igkit.attribution.integrated import integrated_gradients
from igkit.domain import Attribution, BadItem, Domain, Explanation, Item, Prepared
from igkit.errors import IGInputError, IgkitError, NonFiniteError
from igkit.methods.registry import attribute, get_method
from igkit.options import Integration


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


Outcome = Explanation | Skipped | Duplicate


@dataclass(frozen=True)
class RunOptions:
    """What a run computes beyond the domain's settings: integration, extra methods."""

    integration: Integration = field(default_factory=Integration)
    methods: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"integration": self.integration.describe(), "methods": list(self.methods)}


def check_methods(methods: Sequence[str], domain: Domain | None = None) -> tuple[str, ...]:
    """Extra methods computed beside integrated gradients (which is always computed), checked
    before any work: unknown names and methods the domain declares unavailable are refused."""
    names = tuple(dict.fromkeys(m.strip() for m in methods if m.strip()))
    for name in names:
        if name == "integrated_gradients":
            raise IGInputError("integrated_gradients is always computed; list only the other methods")
        get_method(name)
        if domain is not None and name in domain.unavailable_methods:
            raise IGInputError(domain.unavailable_methods[name])
    return names


def explain_stream(domain: Domain, model: Any, items: Iterable[Item | BadItem], settings: dict[str, Any],
                   options: RunOptions, *, already_done: Callable[[Item], bool] = lambda item: False,
                   on_item: Callable[[Item | None], None] = lambda item: None) -> Iterator[Outcome]:
    """Outcomes of ``items`` as their groups finish.

    A group runs as soon as it holds ``domain.max_group`` items (an item without a group
    runs at once); partly filled groups wait for more items of their kind, at most
    4 × ``max_group`` prepared items in all. Items for which ``already_done`` is true are
    not computed (resume). ``on_item`` is told which item is being worked on (progress).
    """
    seen: dict[str, Item] = {}
    pending: dict[Any, list[tuple[Item, Prepared]]] = {}
    size = max(1, domain.max_group)
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
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is reported per item
            yield skipped_outcome(entry, exc)
            continue
        key = object() if prepared.group is None else prepared.group
        members = pending.setdefault(key, [])
        members.append((entry, prepared))
        if len(members) >= size or prepared.group is None:
            yield from _run_group(domain, pending.pop(key), options, on_item)
        elif sum(len(m) for m in pending.values()) >= 4 * size:
            for group in list(pending.values()):
                yield from _run_group(domain, group, options, on_item)
            pending.clear()
    for group in pending.values():
        yield from _run_group(domain, group, options, on_item)


def _run_group(domain: Domain, group: list[tuple[Item, Prepared]], options: RunOptions,
               on_item: Callable[[Item | None], None]) -> Iterator[Outcome]:
    on_item(group[0][0])
    try:
        attributions = attribute_group(domain, group, options)
        outcomes: list[Outcome] = [_explanation(domain, a) for a in attributions]
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001
        if len(group) == 1:
            outcomes = [skipped_outcome(group[0][0], exc)]
        else:  # isolate the culprit: the others still get their results
            outcomes = [o for single in group for o in _run_group(domain, [single], options, on_item)]
    yield from outcomes


def _explanation(domain: Domain, attribution: Attribution) -> Explanation:
    explanation = domain.explanation(attribution)
    if not isinstance(explanation, Explanation):
        raise TypeError(f"domain {domain.name!r}: explanation() returned {type(explanation).__name__}, "
                        f"not an igkit.Explanation; subclass igkit.Explanation for the domain's result type")
    return explanation


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
    extra = {name: _as_tuple(attribute(name, batch.forward, batch.inputs,
                                       target=batch.target, forward_args=batch.forward_args,
                                       batch_size=keywords["batch_size"],  # method_options may replace baselines
                                       **{"baselines": batch.baselines, **domain.method_options(name, batch)}))
             for name in options.methods}
    seconds = (time.perf_counter() - start) / len(group)
    return [Attribution(item=item, prepared=p, result=result.example(e),
                        methods={name: tuple(a[e:e + 1] for a in maps) for name, maps in extra.items()},
                        seconds=seconds)
            for e, (item, p) in enumerate(group)]


def _as_tuple(attributions: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return attributions if isinstance(attributions, tuple) else (attributions,)


def skipped_outcome(item: Item, exc: BaseException) -> Skipped:
    if isinstance(exc, NonFiniteError):
        return Skipped(item.source, str(exc), "model", item)
    if isinstance(exc, IgkitError):
        return Skipped(item.source, str(exc), "input", item)
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return Skipped(item.source, "ran out of memory on this item; lower --batch-size (path points "
                                    "per pass) or the domain's size limit", "resources", item)
    return Skipped(item.source, f"internal error: {type(exc).__name__}: {exc}", "internal", item,
                   "".join(traceback.format_exception(exc)))
