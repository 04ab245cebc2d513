"""The app's work for one domain, without Gradio: check the input, run the one explain path,
write the item folder exactly as the CLI does, zip it, and keep the result for the α slider.

Every request goes through :meth:`DomainService.run`: the domain reads the item
(``read_items``), the runner explains it (``explain_stream``: ``prepare``, one
integration call, ``Domain.explanation``), and ``run_layout.write_item_folder`` writes
``<name>-<hash>/`` with its ``summary.json`` — the same code as ``igkit <domain> explain``.
A lock per model makes sure one model call runs at a time; user mistakes come back as
a message, never as an exception, so the app keeps serving; a time budget per request
(:mod:`igkit.app.budget`) stops work that would hold a model for minutes.
"""
from __future__ import annotations

import glob
import itertools
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit.api import run_options
from igkit.app.budget import DEFAULT_BUDGET_S, Budget, BudgetExceeded, ProgressCallback
from igkit.app.choices import chosen_settings, path_choices
from igkit.app.html import escape_markdown
from igkit.app.views import AppView, ModelChoice, Panels, find_view, score_curve_picture, summary_markdown
from igkit.attribution.baselines import as_input_tuple, resolve_baselines
from igkit.domain import BadItem, Domain, Explanation
from igkit.errors import IGInputError, IgkitError, IgkitWarning
from igkit.io.records import read_json
from igkit.methods.registry import gradients_at
from igkit.run.run_layout import run_fingerprint, write_item_folder
from igkit.run.runner import Skipped, explain_stream

#: largest picture accepted (bytes)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: largest model file (weights, class names) accepted (bytes); Gradio refuses larger bodies (``max_file_size``)
MAX_MODEL_BYTES = 300 * 1024 * 1024
#: largest picture accepted (pixels): a small PNG can decode to gigabytes
MAX_PIXELS = 4096 * 4096
#: results kept for the α slider and the download, per domain (older folders are deleted)
KEEP_RESULTS = 8
#: longest target (a class name, a word) accepted
MAX_TARGET_CHARS = 200
#: loaded models kept per domain (models depend on settings, e.g. a vision weights choice)
KEEP_MODELS = 3


@dataclass
class Result:
    """One request's outcome: an error message, or the item folder and what the page shows."""

    error: str | None = None
    token: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    zip_path: Path | None = None
    panels: Panels = field(default_factory=Panels)
    seconds: float = 0.0
    explanation: Any = None
    choice: ModelChoice | None = None
    #: the tab's choices this result was computed with (baseline, score)
    chosen: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def summary_text(self) -> str:
        return summary_markdown(self.summary, self.chosen) if self.summary else ""


def names_server_path(text: str) -> bool:
    """True when ``text`` names a file or folder on this machine (or stdin): the app never lets
    the browser make the server read its files; pictures come only as uploads."""
    candidate = text.strip()
    if candidate in ("-", ""):
        return candidate == "-"
    try:
        if os.path.lexists(candidate) or os.path.lexists(os.path.expanduser(candidate)):
            return True
        if any(c in candidate for c in "*?[") and glob.glob(candidate):
            return True
    except (OSError, ValueError):
        return True
    return False


def check_text(text: str | None, max_chars: int) -> str:
    """The text of a request, or a clear :class:`IGInputError`."""
    text = (text or "").strip()
    if not text:
        raise IGInputError("the input is empty: type an item (or pick an example) first")
    if len(text) > max_chars:
        raise IGInputError(f"the input has {len(text)} characters; the app takes at most {max_chars}")
    if "\x00" in text:
        raise IGInputError("the input contains a NUL character")
    if names_server_path(text):
        raise IGInputError("the input names a file or folder on the server; the app never reads server "
                           "files: type the item itself, or upload a file")
    return text


def safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_-")[:40]
    return stem or "upload"


def check_upload(path: str | os.PathLike | None, roots: Sequence[Path], out_dir: Path) -> str:
    """Copy an uploaded picture into ``out_dir`` as PNG and return its path.

    Only files inside ``roots`` (Gradio's upload folder, which the app controls) are
    opened; the size and pixel count are limited; anything that is not a picture is
    refused with a message.
    """
    if not path:
        raise IGInputError("no picture: upload one (or pick an example) first")
    resolved = uploaded_file(path, roots, "picture")
    if resolved.stat().st_size > MAX_UPLOAD_BYTES:
        raise IGInputError(f"the upload has {resolved.stat().st_size / 1e6:.1f} MB; the app takes at most "
                           f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(resolved) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise IGInputError(f"the picture has {width}×{height} pixels; the app takes at most "
                                   f"{MAX_PIXELS:,} pixels")
            picture = probe.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise IGInputError(f"the file you uploaded ({resolved.name}) is not a picture this app can read: upload "
                           f"a PNG, JPEG, GIF, BMP, TIFF or WebP image") from None
    target = out_dir / f"{safe_stem(resolved.name)}.png"
    picture.save(target)
    return str(target)


def uploaded_file(path: str | os.PathLike, roots: Sequence[Path], what: str) -> Path:
    """``path`` resolved, if it is a file the browser uploaded (inside ``roots``); else a clear error."""
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
        raise IGInputError("the app reads uploaded files only, not paths on the server")
    if not resolved.is_file():
        raise IGInputError(f"the uploaded {what} is gone; upload it again")
    return resolved


def path_values(prepared: Any, alpha: float, *, integrand: bool = False) -> tuple[torch.Tensor, ...]:
    """At the path point ``alpha``: the gradient ∇F(b + α(x − b)), or with ``integrand`` the
    gradient × (x − b) (whose average over α is the attribution); per input, batch of 1.
    With several baselines (a stack), the average over them, as integrated gradients averages."""
    xs, _ = as_input_tuple(prepared.inputs)
    stacks = resolve_baselines(prepared.baselines, xs)
    total: list[torch.Tensor] | None = None
    for k in range(stacks[0].shape[0]):
        baselines = tuple(b[k] for b in stacks)
        grads = gradients_at(prepared.forward, xs, [alpha], baselines, target=prepared.target,
                             forward_args=prepared.forward_args, batch_size=prepared.batch_size)
        parts = [g[0].detach() * ((x - b).detach() if integrand else 1) for g, x, b in zip(grads, xs, baselines)]
        total = parts if total is None else [t + q for t, q in zip(total, parts)]
    return tuple((t / stacks[0].shape[0]).cpu() for t in total)


class DomainService:
    """Serve one domain: models loaded once, one model call at a time, results kept briefly."""

    def __init__(self, domain: Domain, model_sources: Sequence[str | None] = (), *,
                 view: AppView | None = None, workdir: str | Path | None = None,
                 upload_roots: Sequence[str | Path] = (), budget_s: float = DEFAULT_BUDGET_S) -> None:
        self.domain = domain
        self.view = view if view is not None else find_view(domain)
        self.choices = self.view.models(list(model_sources))
        if not self.choices:
            raise IGInputError(f"the {domain.name} tab offers no model")
        self.path_choices = path_choices(domain)
        self.budget_s = float(budget_s)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"igkit-app-{domain.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if workdir is None:  # a folder of its own: removed with the service (or at exit), never left in /tmp
            weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
        self.upload_roots = [Path(r) for r in upload_roots] + [self.workdir]
        self._locks: dict[ModelChoice, threading.Lock] = {c: threading.Lock() for c in self.choices}
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self._results: OrderedDict[str, Result] = OrderedDict()
        self._guard = threading.Lock()  # protects the two dictionaries above

    # --- models ----------------------------------------------------------------------------
    def choice(self, label: str | None) -> ModelChoice:
        for choice in self.choices:
            if choice.label == label:
                return choice
        if label in (None, ""):
            return self.choices[0]
        raise IGInputError(f"unknown model {label!r}; choose one of: {', '.join(c.label for c in self.choices)}")

    def custom_choice(self, values: dict[str, str | None]) -> ModelChoice | None:
        """The user's own model described by the tab's custom fields, or None when they are empty.
        File fields must be uploads (never a server path); text fields go to the view as typed."""
        given = {k: str(v).strip() for k, v in (values or {}).items() if v not in (None, "") and str(v).strip()}
        if not given:
            return None
        kinds = {c.key: c.kind for c in self.view.custom_inputs}
        unknown = sorted(set(given) - set(kinds))
        if unknown:
            raise IGInputError(f"the {self.domain.name} tab has no field {unknown[0]!r} for your own model")
        for key, kind in kinds.items():
            if kind == "file" and key in given:
                found = uploaded_file(given[key], self.upload_roots, key)
                if found.stat().st_size > MAX_MODEL_BYTES:
                    raise IGInputError(f"the {key} file has {found.stat().st_size / 1e6:.0f} MB; the app takes at "
                                       f"most {MAX_MODEL_BYTES / 1e6:.0f} MB")
                given[key] = str(found)
        choice = self.view.custom_choice(given)
        with self._guard:
            self._locks.setdefault(choice, threading.Lock())
        return choice

    def model(self, choice: ModelChoice, settings: dict[str, Any]) -> Any:
        """The loaded model (call while holding the choice's lock)."""
        keys = self.view.model_settings
        relevant = settings if keys is None else {k: settings.get(k) for k in keys}
        key = (choice, json.dumps(relevant, sort_keys=True, default=str))
        with self._guard:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = self.domain.load_model(choice.source, **settings)
        with self._guard:
            self._models[key] = model
            while len(self._models) > KEEP_MODELS:
                self._models.popitem(last=False)
        return model

    # --- a request -------------------------------------------------------------------------
    def run(self, text: str | None = None, upload: str | None = None, *, model: str | None = None,
            target: str | None = None, methods: Sequence[str] = (), steps: int | float | None = None,
            tolerance: float | None = None, choices: dict[str, str | None] | None = None,
            custom: dict[str, str | None] | None = None, budget_s: float | None = None,
            report: ProgressCallback | None = None) -> Result:
        """Explain one item; returns a :class:`Result` whose ``error`` says what to fix.

        ``choices``: the tab's baseline/score picks; ``custom``: the fields of a model of the user's
        own (it replaces ``model``); ``budget_s``: this request's time budget (at most the app's);
        ``report``: progress callback (fraction of the budget spent, text).
        """
        start = time.perf_counter()
        request_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        seconds = self.budget_s if not budget_s or budget_s <= 0 else min(float(budget_s), self.budget_s)
        budget = Budget(seconds, report)
        try:
            result = self._run(text, upload, request_dir, model, target, methods, steps, tolerance,
                               choices or {}, custom or {}, budget)
        except BudgetExceeded as exc:
            result = Result(error=str(exc))
        except IgkitError as exc:
            result = Result(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the app keeps serving; the log has the details
            traceback.print_exc(file=sys.stderr)
            result = Result(error=f"internal error ({type(exc).__name__}: {exc}); the server log has the "
                                  f"details")
        result.seconds = time.perf_counter() - start
        if result.ok:
            self._keep(result, request_dir)
        else:
            shutil.rmtree(request_dir, ignore_errors=True)
        return result

    def _run(self, text: str | None, upload: str | None, request_dir: Path, label: str | None,
             target: str | None, methods: Sequence[str], steps: int | float | None,
             tolerance: float | None, picked: dict[str, str | None], custom: dict[str, str | None],
             budget: Budget) -> Result:
        choice = self.custom_choice(custom) or self.choice(label)
        if target and len(target) > MAX_TARGET_CHARS:
            raise IGInputError(f"the target has {len(target)} characters; at most {MAX_TARGET_CHARS}")
        chosen = chosen_settings(self.path_choices, picked)
        overrides = {**dict(choice.settings), **self.view.settings(target or None), **chosen}
        # checked and completed as the CLI and the API do it, for the model chosen
        settings = self.domain.keyword_settings(overrides, model_source=choice.source,
                                                methods=[m for m in methods if m])
        steps = int(steps) if steps else None
        if steps is not None and not 2 <= steps <= 2048:
            raise IGInputError(f"steps must be between 2 and 2048 (0: adaptive), got {steps}")
        if tolerance is not None and not 0 < float(tolerance) <= 1:
            raise IGInputError(f"the tolerance must be in (0, 1], got {tolerance}")
        options = run_options(self.domain, [m for m in methods if m], steps=steps,
                              tolerance=float(tolerance) if tolerance else None)
        if self.view.input_kind == "image":
            source = check_upload(upload, self.upload_roots, request_dir)
        else:
            source = check_text(text, self.view.max_chars)
        with self._locks[choice], warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", IgkitWarning)
            budget.check("loading the model")
            model = self.model(choice, settings)
            budget.check("reading the item")
            entries = list(itertools.islice(self.domain.read_items([source], **settings), 1))
            if not entries:
                raise IGInputError(f"no {self.domain.name} item in the input; {self.domain.items_help}")
            if isinstance(entries[0], BadItem):
                raise IGInputError(entries[0].reason)
            budget.check("integrating")
            with budget.watching_passes():
                outcomes = list(explain_stream(self.domain, model, entries, settings, options))
            explanation = next((o for o in outcomes if isinstance(o, Explanation)), None)
            if explanation is None:
                skipped = next((o for o in outcomes if isinstance(o, Skipped)), None)
                if skipped is None:
                    raise IGInputError("the input gave no result")
                if skipped.traceback:
                    print(skipped.traceback, file=sys.stderr)
                raise IGInputError(skipped.reason)
            budget.check("writing the item's files")
            run = run_fingerprint(self.domain, model, choice.source, settings, options, True)
            folder = write_item_folder(self.domain, explanation, request_dir, run, True)
            top = self.view.predictions(model, explanation)
        summary = read_json(folder / "summary.json")
        zip_path = Path(shutil.make_archive(str(request_dir / folder.name), "zip", root_dir=folder.parent,
                                            base_dir=folder.name))
        result = Result(summary=summary, folder=folder, zip_path=zip_path,
                        explanation=explanation, choice=choice, chosen=chosen)
        budget.check("drawing the results")
        result.panels = self._panels(result)
        said = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, IgkitWarning))
        for other in (w for w in caught if not issubclass(w.category, IgkitWarning)):
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)  # to the log
        result.panels.notes[:0] = [f"⚠️ {escape_markdown(message)}" for message in said]
        if choice not in self.choices:  # the person's own model: which one, and what igkit cannot know of it
            result.panels.notes.insert(0, f"**Your own model:** {escape_markdown(choice.label)}. {choice.note}")
        if top:
            result.panels.label = result.panels.label or top
            if self.view.target_label and result.panels.targets is None:
                result.panels.targets = list(top)
        return result

    def _panels(self, result: Result) -> Panels:
        try:
            panels = self.view.panels(result.explanation, result.folder, result.summary)
        except Exception as exc:  # noqa: BLE001 - fall back to the generic view, say why
            traceback.print_exc(file=sys.stderr)
            panels = AppView.panels(self.view, result.explanation, result.folder, result.summary)
            panels.notes.append(f"(the {self.domain.name} view failed: {type(exc).__name__}: {exc}; "
                                f"showing the files)")
        attribution = result.explanation.attribution
        methods = getattr(attribution, "methods", {}) or {}
        if methods:  # integrated gradients first, then every other method, drawn the same way
            maps = {"integrated gradients": attribution.result.attribution_tuple, **methods}
            for name, values in maps.items():
                try:
                    panels.methods.append((self.view.map_picture(result.explanation, values, name,
                                                                 gradient=False), name))
                except Exception as exc:  # noqa: BLE001 - one method's picture must not lose the others
                    traceback.print_exc(file=sys.stderr)
                    panels.notes.append(escape_markdown(f"{name}: could not draw its map ({type(exc).__name__}: "
                                                        f"{exc})"))
        return panels

    def _keep(self, result: Result, request_dir: Path) -> None:
        result.token = secrets.token_urlsafe(16)
        with self._guard:
            self._results[result.token] = result
            while len(self._results) > KEEP_RESULTS:
                _, old = self._results.popitem(last=False)
                if old.folder is not None:
                    shutil.rmtree(old.folder.parent, ignore_errors=True)

    def result(self, token: str | None) -> Result:
        with self._guard:
            found = self._results.get(token or "")
        if found is None:
            raise IGInputError("no result to look at: run an item first (the app keeps the last "
                               f"{KEEP_RESULTS} results of each tab)")
        return found

    # --- the α slider ----------------------------------------------------------------------
    def interior(self, token: str | None, alpha: float) -> tuple[np.ndarray, np.ndarray | None]:
        """The score along the path with a marker at ``alpha``, and the gradient at that point."""
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise IGInputError(f"α must be between 0 and 1, got {alpha}")
        result = self.result(token)
        attribution = result.explanation.attribution
        ig = attribution.result
        target = result.summary.get("target")
        curve = score_curve_picture(ig.alphas[0].tolist(), ig.path_scores[0].tolist(), alpha,
                                    f"along the path: {str(target)[:30]}" if target is not None else "")
        with self._locks[result.choice]:
            values = path_values(attribution.prepared, alpha, integrand=self.view.alpha_shows == "integrand")
        what = "∇F · (x − b)" if self.view.alpha_shows == "integrand" else "∇F"
        picture = self.view.map_picture(result.explanation, values, f"{what} at α = {alpha:.2f}", gradient=True)
        return curve, picture
