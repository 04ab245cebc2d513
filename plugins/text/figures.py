"""Pictures of the text domain's method comparison: one context's words × methods
(``methods.png``), and the deletion/insertion curves of ``igkit text score-methods``.

matplotlib is imported inside the functions (``Figure`` + the Agg canvas, no pyplot).
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from igkit.outputs import colours

from .table_columns import OOV_MARK, is_magnitude, method_columns, word_label

#: cells are annotated with their values up to this many words (longer contexts: colours only)
ANNOTATE_WORDS = 40
#: line styles for the curves: colour × dash cycle, so more than ten methods stay distinct
DASHES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def _cell(value: float, peak: float, magnitude: bool) -> np.ndarray:
    """igkit's one convention (igkit.outputs.colours): red raises, blue lowers; purple for unsigned sizes."""
    hex_colour = colours.magnitude_colour(value, peak) if magnitude else colours.signed_colour(value, peak)
    return np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def _ink(rgb: np.ndarray) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    return "white" if float(rgb @ np.array([0.2126, 0.7152, 0.0722])) < 0.5 else "black"


def methods_figure(record: dict[str, Any], path: Path, dpi: int = 110) -> Path:
    """One context: a row per word, a column per method (IG, the paper's gradient × embedding
    column unless ``grad_x_input`` is among ``--methods``, then ``--methods``).

    Each column is scaled to its own largest |value| in this context (the units differ between
    methods; the title says so); the column's top-ranked word is framed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    columns = method_columns(record)
    if "grad_x_input" in record.get("methods", ()):   # the paper's Gradients column is the same numbers
        columns = [c for c in columns if c[0] != "gradient"]   # (gradient x embedding)
    words = record["words"]
    n_words, n_cols = len(words), len(columns)
    values = np.array([[w[key] for key, _ in columns] for w in words], dtype=float).reshape(n_words, n_cols)
    peaks = np.abs(values).max(axis=0) if n_words else np.zeros(n_cols)
    magnitude = [is_magnitude(record, key) for key, _ in columns]
    rgb = np.array([[_cell(values[i, j], peaks[j], magnitude[j]) for j in range(n_cols)]
                    for i in range(n_words)]).reshape(n_words, n_cols, 3)
    fig = Figure(figsize=(1.6 + 1.25 * n_cols, 2.6 + 0.32 * n_words), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(rgb, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_cols), [textwrap.fill(head.replace("_", " "), 14) for _, head in columns],
                  fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(n_words), [word_label(w) for w in words], fontsize=9)
    ax.tick_params(length=0)
    for j in range(n_cols):
        if n_words:
            top = int(np.argmax(values[:, j]))
            ax.add_patch(Rectangle((j - 0.5, top - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
        if n_words <= ANNOTATE_WORDS:
            for i in range(n_words):
                ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=7,
                        color=_ink(rgb[i, j]))
    title = (f"Next word \u201c{record['target']}\u201d (p = {record['score_input']:.3g}) after "
             f"\u201c{record.get('context', '')}\u201d")
    lines = [line for line in record.get("explains", ()) if not line.startswith("target:")]
    fig.suptitle("\n".join([textwrap.fill(title, 60 + 8 * n_cols)]
                           + [textwrap.fill(line, 90 + 8 * n_cols) for line in lines]), fontsize=8)
    ax.set_title("each column scaled to its own largest |value| in this context: compare colours "
                 "within a column, numbers across columns", fontsize=8, wrap=True)
    handles = [Patch(color=colours.RAISES, label=f"raises p({record['target']}) relative to the baseline"),
               Patch(color=colours.LOWERS, label="lowers it"),
               Patch(facecolor="white", edgecolor="black", linewidth=2, label="the column's top word")]
    if any(magnitude):
        handles.insert(2, Patch(color=colours.MAGNITUDE_STOPS[-2], label="unsigned gradient norm (size only)"))
    if any(w["oov"] for w in words):
        handles.append(Patch(color="none", label=f"{OOV_MARK} read as <unk>"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3, len(handles)), fontsize=8,
               frameon=False)
    fig.savefig(path, dpi=dpi)
    return path


def curves_figure(curves: dict[str, dict[str, Sequence[float]]], metrics: dict[str, dict[str, float]],
                  path: Path, *, positions: int, dpi: int = 110) -> Path:
    """Deletion and insertion curves, one panel per (curve, replacement), a line per method.

    ``curves[method][f"{kind}_{replacement}"]`` is the mean fraction of the prediction's probability
    at k/T = 0 … 1 words removed (deletion) or put back (insertion); one legend (line styles) for all
    panels, and beside each panel the methods' AUCs, best first.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [key for key in next(iter(curves.values()))]
    fig = Figure(figsize=(7.2 * min(2, len(panels)), 4.2 * ((len(panels) + 1) // 2) + 1.2),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots((len(panels) + 1) // 2, min(2, len(panels)), squeeze=False).ravel()
    colours = [f"C{i}" for i in range(10)]
    for ax, panel in zip(axes, panels):
        kind, replacement = panel.split("_", 1)
        for n, (method, by_panel) in enumerate(curves.items()):
            ys = np.asarray(by_panel[panel])
            xs = np.linspace(0, 1, len(ys))
            control = method in ("random", "recency")
            ax.plot(xs, ys, color=("grey" if method == "random" else "black") if control else colours[n % 10],
                    linestyle=(":" if method == "random" else "--") if control else DASHES[(n // 10) % len(DASHES)],
                    marker=None if control else MARKERS[n % len(MARKERS)], markevery=max(1, len(ys) // 6),
                    markersize=4, linewidth=1.6, label=f"{method}{' (control)' if control else ''}")
        better = "lower" if kind == "deletion" else "higher"
        what = "removed" if kind == "deletion" else "put back"
        ax.set_title(textwrap.fill(f"{kind}, words {what} as {_replacement(replacement)} "
                                   f"({better} AUC is better)", 48), fontsize=9)
        ax.set_xlabel(f"fraction of the context's words {what}, top-ranked first", fontsize=8)
        ax.set_ylabel("p(next word) / p(full context), mean", fontsize=8)
        ax.grid(alpha=0.3)
        best = sorted(curves, key=lambda m: metrics[m][panel], reverse=kind != "deletion")
        ax.text(1.03, 1.0, "AUC, best first\n" + "\n".join(f"{metrics[m][panel]:.3f} {m}" for m in best),
                transform=ax.transAxes, ha="left", va="top", fontsize=6.5, family="monospace")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"Words ranked by each method, {positions} predictions", fontsize=10)
    fig.savefig(path, dpi=dpi)
    return path


def _replacement(name: str) -> str:
    return {"zero": "the zero embedding", "unk": "<unk>"}.get(name, name)
