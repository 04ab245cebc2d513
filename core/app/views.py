"""What a domain's tab shows, beyond the generic one: optional hooks, and the generic defaults.

A tab is built from the domain contract alone: a text box, the run, and the files that
:meth:`~igkit.domain.Domain.write_item` wrote (pictures shown, CSV/JSON/text tables
shown, the folder as a zip). A domain that wants more returns an :class:`AppView` —
from a method ``app_view()`` on the domain, or from a module ``app_view`` beside the
domain's module (``igkit.plugins.vision.app_view`` for ``igkit.plugins.vision.domain``)
with a function ``app_view(domain)``. Views read the item folder's files (what the CLI
writes) and the explanation object; they never run a pipeline of their own.

No Gradio here: views return plain data (dicts, lists, numpy pictures) so they can be
tested without a browser.
"""
from __future__ import annotations

import csv
import importlib
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit.outputs import colours
from igkit.app.choices import CustomInput  # re-exported: a plugin's view imports only igkit.app.views
from igkit.app.html import escape_markdown  # re-exported: views escape the user text they put in notes

#: picture files shown in the tab, in this order of preference
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
#: files shown as tables or text
TABLE_SUFFIXES = (".csv", ".json", ".txt", ".tsv")
#: rows of a table shown in the page (the download holds all)
MAX_TABLE_ROWS = 500


@dataclass
class Table:
    """A table for the page: a title, column names and rows."""

    title: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Panels:
    """A result as the page shows it. Empty fields are hidden.

    ``label``: class/word → probability (top predictions); ``highlight``: (text, score in
    [-1, 1] or None) pieces shown as highlighted words with a legend; ``pictures``:
    (file or RGB array, caption) featured first; ``tables``: the featured tables;
    ``notes``: Markdown lines (warnings, findings); ``targets``: what the user may choose
    to explain next (top next words, top classes).
    """

    label: dict[str, float] | None = None
    label_title: str = "Top predictions"
    highlight: list[tuple[str, float | None]] | None = None
    highlight_title: str = "Attribution"
    pictures: list[tuple[Any, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[str] | None = None
    #: integrated gradients and every other method drawn the same way, side by side
    methods: list[tuple[Any, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: a label for people, the source the domain loads, a note."""

    label: str
    source: str | None = None
    note: str = ""
    settings: tuple[tuple[str, Any], ...] = ()


class AppView:
    """The generic tab; override what your domain can show better.

    Every method gets what the domain already produced (the explanation from
    ``Domain.explanation``, the item folder from ``Domain.write_item``) and returns data.
    """

    #: the tab's title (default: the domain's name)
    title: str | None = None
    #: "text" (a text box) or "image" (an image upload; the domain reads the uploaded file)
    input_kind: str = "text"
    input_label: str = "Item"
    placeholder: str = ""
    #: examples offered below the input (strings, or picture files shipped with the view)
    examples: Sequence[str] = ()
    #: longest text accepted
    max_chars: int = 2000
    #: label of the "what to explain" choice; None: no choice offered
    target_label: str | None = None
    #: a Markdown paragraph shown at the top of the tab
    intro: str = ""
    #: what the α slider draws: "gradient" (the paper's interior gradient) or "integrand"
    #: (gradient × (input − baseline), whose average over α is the attribution)
    alpha_shows: str = "gradient"
    #: the settings that change what ``load_model`` returns (None: all of them); a loaded model is
    #: reused while these stay the same, e.g. when only the target changes
    model_settings: tuple[str, ...] | None = None
    #: fields for a model of the user's own (uploads or a folder); see :meth:`custom_choice`
    custom_inputs: tuple[CustomInput, ...] = ()
    #: what the tab says about the path when the domain offers no baseline or score choice
    path_note: str = ""
    #: one picture per row in the methods grid (wide pictures: words in a line)
    wide_pictures: bool = False
    #: the sentence under the methods drawn side by side: what a colour means there
    methods_legend: str = (f"{colours.legend()}. Each picture has its own colour scale (its largest |value| gets "
                           f"the full colour): compare where, not how much, across methods.")

    def __init__(self, domain: Any) -> None:
        self.domain = domain
        if type(self).input_label == AppView.input_label:  # a view's own label wins
            self.input_label = getattr(domain, "items_help", "") or self.input_label
        if not self.intro:
            self.intro = f"**{domain.name}**: {domain.description}" if domain.description else ""

    # --- before the run --------------------------------------------------------------------
    def models(self, sources: Sequence[str | None]) -> list[ModelChoice]:
        """Models to offer; ``sources`` are those given with ``igkit app --model``."""
        if sources:
            return [ModelChoice(f"{s}" if s else "default", s) for s in sources]
        return [ModelChoice("default (the domain's own model)", None)]

    def settings(self, target: str | None) -> dict[str, Any]:
        """Domain settings (keywords of ``settings()``) for the chosen target; {} for defaults."""
        return {}

    def custom_choice(self, values: dict[str, str]) -> ModelChoice:
        """The model of the user's own described by ``values`` (keys of :attr:`custom_inputs`; file
        fields hold the uploaded file's path, already checked to be an upload)."""
        from igkit.errors import IGInputError

        raise IGInputError(f"the {self.domain.name} tab takes no model of your own")

    # --- after the run ---------------------------------------------------------------------
    def predictions(self, model: Any, explanation: Any) -> dict[str, float] | None:
        """The model's top outputs for this item (label → probability), shown above the maps and
        offered as targets; called with the model's lock held. Default: none."""
        return None

    def panels(self, explanation: Any, folder: Path, summary: dict[str, Any]) -> Panels:
        """The featured parts of a result (default: every picture the domain wrote, and its first
        two small CSV tables)."""
        tables = []
        for path in sorted(folder.glob("*.csv")):
            table = read_csv_table(path)
            if table is not None and len(table.headers) <= 50:
                tables.append(table)
        return Panels(pictures=[(str(p), p.name) for p in pictures_in(folder)], tables=tables[:2])

    def map_picture(self, explanation: Any, values: tuple[torch.Tensor, ...], title: str, *,
                    gradient: bool = False) -> np.ndarray | None:
        """A picture of per-feature values with the inputs' shapes: the gradient at a point of the
        path (``gradient=True``) or another method's attributions; default: image-shaped inputs as
        a heat map, others as bars."""
        return generic_map_picture(values, title)


def find_view(domain: Any) -> AppView:
    """The domain's own :class:`AppView` if it has one, else the generic view."""
    hook = getattr(domain, "app_view", None)
    if callable(hook):
        return hook()
    module = type(domain).__module__
    if "." in module:
        name = module.rsplit(".", 1)[0] + ".app_view"
        try:
            found = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                warnings.warn(f"{name} could not be imported ({exc}); {domain.name} gets the generic tab")
            found = None
        except Exception as exc:  # noqa: BLE001 - a broken view must not take the app down
            warnings.warn(f"{name} failed to import ({type(exc).__name__}: {exc}); {domain.name} gets "
                          f"the generic tab")
            found = None
        if found is not None and hasattr(found, "app_view"):
            return found.app_view(domain)
    return AppView(domain)


# --- reading an item folder ----------------------------------------------------------------------
def pictures_in(folder: Path) -> list[Path]:
    """Picture files of an item folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)


def table_files(folder: Path) -> list[Path]:
    """CSV/JSON/text files of an item folder, ``summary.json`` first."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    return sorted(files, key=lambda p: p.name != "summary.json")


def read_file_view(path: Path) -> tuple[str, Any]:
    """A file as the page shows it: ("table", Table) for CSV, ("json", data), or ("text", str)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        rows = list(csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ","))
        headers, body = (rows[0], rows[1:]) if rows else ([], [])
        return "table", Table(path.name, headers, body[:MAX_TABLE_ROWS])
    if suffix == ".json":
        try:
            return "json", json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    text = path.read_text(encoding="utf-8", errors="replace")
    return "text", text[:100_000]


def read_csv_table(path: Path, title: str | None = None) -> Table | None:
    """A CSV file of the item folder as a :class:`Table`, or None if it is not there."""
    if not path.is_file():
        return None
    kind, table = read_file_view(path)
    if kind != "table":
        return None
    if title:
        table.title = title
    return table


def read_json_file(path: Path) -> Any:
    """A JSON file of the item folder, or None if it is missing or damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def summary_markdown(summary: dict[str, Any], chosen: dict[str, Any] | None = None) -> str:
    """What was explained, in the words every output of the run uses (``summary["explains"]``: model,
    target, F(input) and F(baseline), baseline, completeness), then steps and time; every string
    escaped. ``chosen``: the tab's choices (baseline, score) to state beside them."""
    explains = summary.get("explains") or {}
    if explains.get("lines"):
        lines = [escape_markdown(line[:1].upper() + line[1:]) for line in explains["lines"]]
        if chosen:
            lines.append("Chosen in this tab: " + escape_markdown(", ".join(f"{k} {v}" for k, v in chosen.items())))
        lines.append(f"**Steps:** {summary.get('steps', '–')} ({escape_markdown(summary.get('method', ''))}), "
                     f"**time:** {summary.get('seconds', 0):.2f} s")
        if summary.get("methods"):
            lines.append(f"**Other methods:** {escape_markdown(', '.join(summary['methods']))}")
        return "\n\n".join(lines)
    return _plain_summary(summary, chosen)


def _plain_summary(summary: dict[str, Any], chosen: dict[str, Any] | None) -> str:
    def num(key: str, fmt: str = ".4g") -> str:
        value = summary.get(key)
        return "–" if value is None else format(value, fmt)

    error = summary.get("completeness_error")
    error_text = "–" if error is None else f"{error:.3%}"
    if summary.get("completeness_delta") is not None:
        error_text += f" (Σ attributions − ΔF = {summary['completeness_delta']:.3g})"
    converged = summary.get("converged")
    lines = [
        f"**Explained:** {escape_markdown(summary.get('target', '–'))}",
        f"**Score** F(input) = {num('score_input')}, F(baseline) = {num('score_baseline')}, "
        f"Σ attributions = {num('attribution_sum')}",
        f"**Completeness error:** {error_text}"
        + ("" if converged is None else (" (converged)" if converged else " (not converged: raise the "
                                                                          "step limit)")),
        f"**Steps:** {summary.get('steps', '–')} ({escape_markdown(summary.get('method', ''))}), "
        f"**time:** {num('seconds', '.2f')} s",
    ]
    if chosen:
        lines.insert(1, "**Chosen:** " + escape_markdown(", ".join(f"{k} {v}" for k, v in chosen.items())))
    if summary.get("methods"):
        lines.append(f"**Other methods:** {escape_markdown(', '.join(summary['methods']))}")
    return "\n\n".join(lines)


# --- pictures --------------------------------------------------------------------------------------
def figure_array(fig: Any) -> np.ndarray:
    """An Agg figure as an RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def score_curve_picture(alphas: Sequence[float], scores: Sequence[float], alpha: float | None,
                        title: str = "") -> np.ndarray:
    """F(baseline + α(input − baseline)) against α, with a marker at ``alpha``."""
    from matplotlib.figure import Figure

    order = np.argsort(np.asarray(alphas, dtype=float))
    a = np.asarray(alphas, dtype=float)[order]
    s = np.asarray(scores, dtype=float)[order]
    fig = Figure(figsize=(4.6, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.plot(a, s, "-", color="#1f77b4", lw=1.8)
    ax.plot(a, s, ".", color="#1f77b4", ms=3)
    if alpha is not None and len(a):
        ax.axvline(alpha, color="#d62728", lw=1, ls="--")
        ax.plot([alpha], [float(np.interp(alpha, a, s))], "o", color="#d62728", ms=8,
                label=f"α = {alpha:.2f}")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("α (0 = baseline, 1 = input)")
    ax.set_ylabel("score")
    ax.set_xlim(0, 1)
    ax.set_title(title or "score along the path", fontsize=9)
    fig.tight_layout()
    return figure_array(fig)


def generic_map_picture(values: tuple[torch.Tensor, ...], title: str,
                        labels: Sequence[str] | None = None) -> np.ndarray:
    """Per-feature values as a picture in igkit's one colour convention (red raises, blue lowers the
    target score relative to the baseline): an image-shaped input (1×C×H×W, C ≤ 4) as a heat map
    of Σ_c value; anything else as bars of the first input's features (at most 60)."""
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    first = values[0].detach().cpu().double()
    first = first[0] if first.dim() >= 1 and first.shape[0] == 1 else first
    fig = Figure(figsize=(4.6, 3.4), dpi=100)
    ax = fig.add_subplot()
    if first.dim() == 3 and first.shape[0] <= 4 and min(first.shape[1:]) >= 8:
        heat = first.sum(0).numpy()
        peak = colours.shared_peak([heat])
        image = ax.imshow(heat, cmap=colours.diverging_cmap(), norm=Normalize(-peak, peak))
        ax.axis("off")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Σ over channels")
    else:
        flat = first.reshape(-1).numpy()
        shown = flat[:60]
        peak = colours.shared_peak([shown])
        ax.bar(np.arange(len(shown)), shown, color=[colours.signed_colour(float(v), peak) for v in shown],
               edgecolor="#555555", linewidth=0.4)
        ax.axhline(0, color="black", lw=0.6)
        if labels is not None and len(labels) >= len(shown) and len(shown) <= 30:
            ax.set_xticks(np.arange(len(shown)), [str(t) for t in labels[:len(shown)]], rotation=60,
                          fontsize=7)
        else:
            ax.set_xlabel("feature" + (f" (first 60 of {flat.size})" if flat.size > 60 else ""))
    ax.set_title(title, fontsize=9)
    fig.text(0.5, 0.01, colours.legend(), ha="center", va="bottom", fontsize=6.5, color="#333333")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return figure_array(fig)
