"""The Python entry points of the one explain path: in memory (:func:`explain`) or into a
folder (:func:`explain_to_folder`), with the same defaults as ``igkit <domain> explain``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.domain import Domain, Explanation, Item
from igkit.errors import IGInputError
from igkit.options import Integration
from igkit.plugin_manager import get_domain
from igkit.run.engines import Engine, get_engine
from igkit.run.run_folder import RunReport, run_to_folder
from igkit.run.runner import RunOptions, Skipped, check_methods, explain_stream


@dataclass
class Results:
    """What :func:`explain` returns: one :class:`~igkit.domain.Explanation` per item in input
    order (iterate, index, ``len``), and what was skipped and why."""

    explanations: list[Any] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def __iter__(self):
        return iter(self.explanations)

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, index: int) -> Any:
        return self.explanations[index]


def resolve_domain(domain: str | Domain) -> Domain:
    return get_domain(domain) if isinstance(domain, str) else domain


def default_settings(domain: Domain, **overrides: Any) -> dict[str, Any]:
    """The domain's explain settings at their declared defaults, with ``overrides`` (checked: an
    unknown name or a value outside its choices or limits is an ``IGInputError``)."""
    return domain.keyword_settings(overrides)


def run_options(domain: Domain, methods: Sequence[str] = (), **integration: Any) -> RunOptions:
    """The one way a run's options are built and checked, by the CLI, the API, the app and the
    evaluate commands: the domain's integration defaults with the options given (``steps``,
    ``tolerance``, ...; None keeps the default), and the other methods, refused up front if unknown
    or unavailable in this domain."""
    unknown = sorted(set(integration) - set(Integration.__dataclass_fields__))
    if unknown:
        raise IGInputError(f"unknown integration option {unknown[0]!r}; options are "
                           f"{', '.join(Integration.__dataclass_fields__)}")
    return RunOptions(domain.integration.with_overrides(**integration).validated(), check_methods(methods, domain))


def explain(domain: str | Domain, items: Sequence[Any] | Any, *, model: Any = None,
            model_source: str | None = None, methods: Sequence[str] = (),
            integration: dict[str, Any] | None = None, **settings: Any) -> Results:
    """Explain ``items`` with ``domain`` in memory; one bad item never loses the others.

    ``items`` are what the domain reads (SMILES, sentences, image paths; see its
    ``read_items``): one string or path, or a list of them (bytes are refused: decode them
    first); ``model`` a loaded model or None to load ``model_source`` (default:
    the domain's own); ``integration`` overrides the domain's defaults (``steps``,
    ``tolerance``, ``max_steps``, ``batch_size``); ``settings`` the domain's options.
    """
    domain, model, sources, settings, options = _setup(domain, items, model, model_source, methods,
                                                      integration, settings)
    order: list[str] = []

    def read() -> Iterable[Any]:
        for entry in domain.read_items(sources, **settings):
            if isinstance(entry, Item) and entry.digest not in order:
                order.append(entry.digest)
            yield entry

    found: dict[str, Any] = {}
    result = Results()
    for outcome in explain_stream(domain, model, read(), settings, options):
        if isinstance(outcome, Explanation):
            found[outcome.item.digest] = outcome
        elif isinstance(outcome, Skipped):
            result.skipped.append(outcome)
    result.explanations = [found[d] for d in order if d in found]
    return result


def explain_to_folder(domain: str | Domain, items: Sequence[Any] | Any, out: str | Path, *,
                      model: Any = None, model_source: str | None = None, methods: Sequence[str] = (),
                      integration: dict[str, Any] | None = None, pictures: bool = True,
                      overwrite: bool = False, show_progress: bool = False, engine: str | Engine = "local",
                      output_format: str = "folders", **settings: Any) -> RunReport:
    """Like :func:`explain`, written into ``out`` exactly as ``igkit <domain> explain`` writes it.

    ``engine``: ``"local"``, ``"ray"`` or an :class:`igkit.run.engines.Engine` (e.g.
    ``get_engine("ray", workers=4)``); ``output_format="parquet"`` adds ``OUT/items/`` and ``OUT/units/``.
    """
    domain, model, sources, settings, options = _setup(domain, items, model, model_source, methods,
                                                      integration, settings)
    return run_to_folder(domain, model, domain.read_items(sources, **settings), out, settings=settings,
                         options=options, model_source=model_source, pictures=pictures,
                         overwrite=overwrite, show_progress=show_progress,
                         engine=get_engine(engine) if isinstance(engine, str) else engine,
                         output_format=output_format, inputs=sources)



def _iterable_items(items: Any) -> Any:
    """``items`` as given, unless it is raw bytes (iterating them would give one item per byte)."""
    if isinstance(items, (bytes, bytearray, memoryview)):
        raise IGInputError("items are bytes; decode them first (e.g. items.decode('utf-8')) and give the "
                           "text, or a list of items")
    if not hasattr(items, "__iter__"):
        raise IGInputError(f"items must be one item (a string or path) or a list of them, got "
                           f"{type(items).__name__}")
    return items


def _setup(domain: str | Domain, items: Any, model: Any, model_source: str | None, methods: Sequence[str],
           integration: dict[str, Any] | None, settings: dict[str, Any]
           ) -> tuple[Domain, Any, list[Any], dict[str, Any], RunOptions]:
    """What both entry points resolve the same way: the domain, its settings and defaults, the model."""
    sources = [items] if isinstance(items, (str, Path)) else list(_iterable_items(items))
    domain = resolve_domain(domain)
    settings = domain.keyword_settings(settings, model_source=model_source, methods=methods, items=sources)
    options = run_options(domain, methods, **(integration or {}))
    if model is None:
        model = domain.load_model(model_source, **settings)
    return domain, model, sources, settings, options
