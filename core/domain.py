"""The domain contract: everything the runner needs from a kind of input, declared once.

The core knows nothing about images, molecules or words. A domain says how to read
items (:meth:`Domain.read_items`), how to turn one into tensors and a forward
function (:meth:`Domain.prepare`), which items may share one integration call
(``Prepared.group``, :meth:`Domain.collate`), its integration defaults
(:attr:`Domain.integration`), and how to write one item's files
(:meth:`Domain.write_item`). :mod:`igkit.run.runner` does the rest, the same way for
the CLI, the Python API, the web app and a cluster.

Domain modules are imported by ``igkit --help``: import heavy libraries (RDKit,
torchvision, matplotlib) inside the methods, not at the top of the module.
"""
from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Sequence

from igkit.options import Integration

if TYPE_CHECKING:  # torch and numpy load when a domain first computes, not for `igkit --help`
    import numpy as np
    import torch

    from igkit.attribution.result import IGResult


@dataclass(frozen=True)
class Item:
    """One input as read: where it came from, what the domain prepares, and its identity.

    ``digest`` hashes the content (and per-item options such as a named target): two
    items with the same digest are the same work, a changed file gets a new digest.
    """

    source: str
    value: Any
    name: str
    digest: str


@dataclass(frozen=True)
class BadItem:
    """An input that could not be read as an item, and why (the user's words, not torch's)."""

    source: str
    reason: str


def content_digest(*parts: str | bytes) -> str:
    """A hex SHA-256 over the parts (each length-prefixed, so ("ab", "c") ≠ ("a", "bc"))."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def text_item(source: str, text: str, name: str | None = None) -> Item:
    """An item whose content is a string (a SMILES, a sentence, a comma-separated vector)."""
    return Item(source=source, value=text, name=text if name is None else name,
                digest=content_digest(text))


@dataclass
class Prepared:
    """One item made ready for attribution.

    ``inputs`` carry a leading batch dimension of 1; ``forward(*scaled_inputs,
    *forward_args)`` returns scores. Items whose ``group`` is equal (and not None)
    may be collated into one integration call. ``label`` names the target for humans
    (a class name, a word); ``context`` holds what writing needs later (the image,
    the molecule); ``batch_size`` suggests path points per pass for this item.
    """

    name: str
    inputs: torch.Tensor | tuple[torch.Tensor, ...]
    forward: Callable[..., torch.Tensor]
    target: Any = None
    baselines: Any = None
    forward_args: tuple = ()
    label: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    group: Hashable | None = None
    batch_size: int | None = None
    #: what the score F is and what it means, for every output's caption (igkit.outputs.explains): e.g.
    #: scale "logit", target_meaning "benzene present"; baseline_name says where the path starts
    scale: str = ""
    target_meaning: str = ""
    baseline_name: str = ""


@dataclass
class Attribution:
    """One item's result from the runner: its IG result (batch size 1), other methods' maps,
    and the time its group took per item. Domains wrap it in their own explanation type."""

    item: Item
    prepared: Prepared
    result: IGResult
    methods: dict[str, tuple[torch.Tensor, ...]]
    seconds: float
    #: the model explained, ``{"name", "digest"}``: set by the run before its files are written
    model: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        return self.result.summary(0)


@dataclass(eq=False)
class Explanation:
    """One item's result, in every domain and from every route (``igkit.explain``, the runner, the
    app): the runner's :class:`Attribution` and one way to reach what every result has. A domain's
    own result type (``MoleculeExplanation``, ``TextExplanation``, ``ImageExplanation``) subclasses
    it and adds what its people read (atoms, words, pixels). Compared by identity: it holds tensors."""

    attribution: Attribution

    @property
    def item(self) -> Item:
        return self.attribution.item

    @property
    def source(self) -> str:
        """Where the item came from (a file and line, an argument): the same in every domain."""
        return self.attribution.item.source

    @property
    def result(self) -> IGResult:
        """The IG result (batch size 1): attributions, completeness, steps, path scores."""
        return self.attribution.result

    @property
    def seconds(self) -> float:
        return self.attribution.seconds

    @property
    def summary(self) -> dict[str, Any]:
        return self.attribution.summary


class Domain:
    """Base class for a kind of input. Subclass it and return it from ``igkit_domains``.

    Required: :meth:`load_model` and :meth:`prepare`. Everything else has a default
    that suits a domain whose items are strings and whose inputs are tensors.
    """

    #: short name used on the command line (``igkit explain --domain NAME``, ``igkit NAME explain``)
    name: str = ""
    #: one line for ``igkit plugins``
    description: str = ""
    #: the integration defaults of this domain (every route reads these)
    integration: Integration = Integration()
    #: items per integration call at most (items of one group share passes)
    max_group: int = 32
    #: what an item is, for ``--help`` (e.g. "SMILES strings", "image files or folders")
    items_help: str = "items the domain understands"
    #: attribution methods this domain cannot offer, and why: ``--methods`` stops with the reason
    #: before any work (e.g. Grad-CAM for an LSTM)
    unavailable_methods: dict[str, str] = {}
    #: this domain's explain settings, declared once (a frozen dataclass of :func:`igkit.settings.setting`
    #: fields): its options, the Python API's keywords, the app's choices, ``run.json`` and its README's
    #: option table all come from it; None: no settings of its own
    settings_class: type | None = None

    # --- options -----------------------------------------------------------------------------
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """This domain's own explain options: by default those of :attr:`settings_class`."""
        if self.settings_class is not None:
            from igkit.settings import add_options

            add_options(parser, self.settings_class, self.name)

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        """This domain's explain settings from parsed options: JSON values, part of the run's
        fingerprint, passed as keywords to :meth:`load_model`, :meth:`read_items`, :meth:`prepare`.
        By default :attr:`settings_class`'s, checked, then :meth:`complete_settings`."""
        if self.settings_class is None:
            return {}
        from igkit.settings import from_namespace

        methods = [m.strip() for m in str(getattr(args, "methods", "") or "").split(",") if m.strip()]
        return self.complete_settings(from_namespace(self.settings_class, args),
                                      model_source=getattr(args, "model", None), methods=methods,
                                      items=list(getattr(args, "items", None) or []))

    def keyword_settings(self, values: dict[str, Any], *, model_source: str | None = None,
                         methods: Sequence[str] = (), items: Sequence[Any] = ()) -> dict[str, Any]:
        """The same settings from the Python API's (or the app's) keywords over the declared defaults:
        an unknown name or a value outside its choices or limits is an ``IGInputError``."""
        from igkit.settings import from_keywords

        if self.settings_class is None:
            if values:
                from igkit.errors import IGInputError

                raise IGInputError(f"domain {self.name!r} has no setting {sorted(values)[0]!r}: it declares no "
                                   f"settings of its own")
            return {}
        return self.complete_settings(from_keywords(self.settings_class, f"the {self.name} domain", **values),
                                      model_source=model_source, methods=list(methods), items=list(items))

    def complete_settings(self, settings: dict[str, Any], *, model_source: str | None, methods: Sequence[str],
                          items: Sequence[Any]) -> dict[str, Any]:
        """Settings that follow from the others and from the run (``--model``, ``--methods``, the
        items), the same for every route; and checks across settings. By default: as given."""
        return settings

    def sources(self, args: argparse.Namespace) -> list[Any]:
        """What :meth:`read_items` reads, from parsed options: the positional items by default;
        a domain with ``--input FILE`` adds its files here (not to the settings, so the same
        lines read from another file resume)."""
        return list(args.items)

    # --- model -------------------------------------------------------------------------------
    def load_model(self, source: str | None, **settings: Any) -> Any:
        """Load the model named by ``source`` (a file, a model name, or None for the default)."""
        raise NotImplementedError(f"domain {self.name!r} does not say how to load a model")

    def model_name(self, model: Any, source: str | None) -> str:
        """What ``run.json`` and every caption call the model: ``--model`` as given, else the
        domain's default model named (override to name a shipped model)."""
        return source if source else f"{self.name} default model ({type(model).__name__})"

    def model_fingerprint(self, model: Any) -> str:
        """A short hash of what the model computes: a changed model is recomputed on resume."""
        import torch

        from igkit.io.checkpoint import fingerprint_tensors

        if isinstance(model, torch.nn.Module):
            return fingerprint_tensors(model.state_dict())
        if isinstance(model, torch.Tensor):
            return fingerprint_tensors({"model": model})
        return content_digest(repr(model))[:16]

    # --- items -------------------------------------------------------------------------------
    def read_items(self, sources: Sequence[str], **settings: Any) -> Iterable[Item | BadItem]:
        """Items from the command line's arguments, in order; by default each argument is one."""
        for number, text in enumerate(sources, start=1):
            yield text_item(f"argument {number}", text)

    def prepare(self, model: Any, value: Any, **settings: Any) -> Prepared:
        """Turn one item's value into a :class:`Prepared`; raise ``IGInputError`` if it is unusable."""
        raise NotImplementedError(f"domain {self.name!r} does not say how to prepare an item")

    def collate(self, group: Sequence[Prepared]) -> Prepared:
        """Several prepared items of one group as one batch (default: concatenate along dim 0)."""
        import torch

        first = group[0]
        if len(group) == 1:
            return first
        inputs = _cat([p.inputs for p in group])
        args = tuple(_cat([p.forward_args[i] for p in group]) if isinstance(a, torch.Tensor) else a
                     for i, a in enumerate(first.forward_args))
        targets = [p.target for p in group]
        target = None if targets[0] is None else torch.as_tensor(targets).reshape(-1)
        return Prepared(name=first.name, inputs=inputs, forward=first.forward, target=target,
                        baselines=first.baselines, forward_args=args, group=first.group,
                        batch_size=first.batch_size)

    def method_options(self, method: str, batch: Prepared) -> dict[str, Any]:
        """Options a method needs from this domain (a layer for Grad-CAM, groups for occlusion)."""
        return {}

    # --- outputs -----------------------------------------------------------------------------
    def explanation(self, attribution: Attribution) -> Explanation:
        """This domain's :class:`Explanation` of one item (default: the base type itself)."""
        return Explanation(attribution)

    def other_scale(self, explanation: Explanation) -> dict[str, Any] | None:
        """F(input) and F(baseline) on the scale not explained, ``{"name", "input", "baseline"}``
        (the probability beside a logit, or the reverse), for captions; None if unknown."""
        return None

    def summary_fields(self, explanation: Explanation) -> dict[str, Any]:
        """Domain fields added to the item's ``summary.json`` (JSON values)."""
        return {}

    def write_item(self, explanation: Explanation, folder: Path, *, pictures: bool = True) -> list[str]:
        """Write one item's files into ``folder`` (a fresh temporary folder); return their names.

        The default writes ``result.npz`` and one ``importance_*.csv`` per input, then the
        pictures of :meth:`render`.
        """
        import numpy as np

        from igkit.io.records import write_csv

        attribution = explanation.attribution
        files = [attribution.result.save(folder / "result.npz").name]
        for name, values in self.importance(attribution.result, attribution.prepared).items():
            path = write_csv(folder / f"importance_{name}.csv", ("index", "value"),
                             enumerate(np.ravel(values)))
            files.append(path.name)
        if pictures:
            files += [Path(p).name for p in self.render(attribution.result, attribution.prepared, folder)]
        return files

    def units(self, explanation: Explanation) -> list[dict[str, Any]]:
        """One row per unit a person reads (an atom, a word, an image patch) for ``--format parquet``:
        ``unit`` (index), ``label``, ``attribution`` and any further numeric columns. By default one
        row per feature of each input, labelled ``input<i>[<j>]``."""
        attribution = explanation.attribution
        rows: list[dict[str, Any]] = []
        for i, values in enumerate(attribution.result.attribution_tuple):
            for j, value in enumerate(values[0].detach().cpu().reshape(-1).tolist()):
                rows.append({"unit": len(rows), "label": f"input{i}[{j}]", "attribution": value})
        return rows

    def importance(self, result: IGResult, prepared: Prepared) -> dict[str, "np.ndarray"]:
        """Per-feature importance to write as CSV; by default each input's attribution, flattened."""
        return {f"input{i}": a[0].detach().cpu().numpy().ravel()
                for i, a in enumerate(result.attribution_tuple)}

    def render(self, result: IGResult, prepared: Prepared, out_dir: Path) -> list[Path]:
        """Write pictures for one item into ``out_dir``; return the files written."""
        return []

    def write_run(self, out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
        """Tables and pictures over every finished item, built from the item folders' files
        (so a resumed run gets them whole); return the names written into ``out_dir``."""
        return []


def _cat(parts: Sequence[Any]) -> Any:
    import torch

    if isinstance(parts[0], (tuple, list)):
        return tuple(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))
    return torch.cat(list(parts))
