"""The text tab of ``igkit app``: what it shows of the files ``igkit text explain`` writes.

Read by :func:`igkit.app.views.find_view`; imported only when the app runs. The words and
their attributions come from the item folder's ``explanation.json`` (the paper's table
is built from it, every word escaped); the top next words are the model's probabilities for
the context. Other methods and the integrand at α are drawn over the words, as IG is. The
model is the shipped LSTM, or a transformers causal-LM folder on this server that the user names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igkit import IGInputError
from igkit.outputs import colours
from igkit.app.views import (AppView, CustomInput, ModelChoice, Panels, escape_markdown, figure_array,
                             read_csv_table, read_json_file)

#: next words offered (and shown with their probabilities)
TOP_WORDS = 10
#: characters per line of the words pictures (monospace, so boxes never overlap)
LINE_CHARS = 64
EXAMPLES = ("the shareholders claimed more", "the company said it expects to report",
            "stock prices fell sharply in", "the new york stock")


class TextView(AppView):
    input_label = "Context (the words before the next word; the model reads the last 20)"
    placeholder = "the shareholders claimed more"
    examples = EXAMPLES
    max_chars = 1000
    target_label = "Next word to explain"
    title = "text"
    alpha_shows = "integrand"  # gradient × (embedding − baseline): its average over α is the word's IG
    wide_pictures = True  # words in a line
    model_settings = ()  # the language model does not depend on the target or the context options
    custom_inputs = (CustomInput("folder", "text", "A transformers causal language model folder on this server",
                                 "a folder with config.json, the weights and the tokenizer (e.g. one saved with "
                                 "save_pretrained); nothing is downloaded"),)
    path_note = ("**Baseline:** every context word's embedding set to zero (the paper's); **score:** the "
                 "probability of the next word. The text domain offers no other baseline or score.")

    def __init__(self, domain: Any) -> None:
        super().__init__(domain)
        self.intro = ("**Text**: which context words made the language model predict the next word "
                      "(integrated gradients over the word embeddings; probability units, adding up to "
                      "p(next word) − p(all-zero embeddings)). Pick another next word to explain it instead.")

    def settings(self, target: str | None) -> dict[str, Any]:
        return {"target": target.strip()} if target and target.strip() else {}

    def models(self, sources: Sequence[str | None]) -> list[ModelChoice]:
        if sources:
            return [ModelChoice(str(s), s) for s in sources]
        return [ModelChoice("shipped LSTM (Penn Treebank, test perplexity 112.54)", None,
                            "igkit's shipped Zaremba small LSTM, trained on the Penn Treebank.")]

    def custom_choice(self, values: dict[str, str]) -> ModelChoice:
        """A transformers folder named by the user (a folder of this server: the app runs on their machine)."""
        folder = Path(values.get("folder", "")).expanduser()
        if not folder.is_dir():
            raise IGInputError(f"no folder {str(folder)!r} on this server: give the folder of a transformers "
                               f"causal language model (with config.json)")
        if not (folder / "config.json").is_file():
            raise IGInputError(f"the folder {folder.name!r} has no config.json: give the folder a transformers "
                               f"model was saved to (save_pretrained)")
        return ModelChoice(f"transformers folder {folder.name}", str(folder),
                           f"Your transformers model in {escape_markdown(folder)}.")

    def predictions(self, model: Any, explanation: Any) -> dict[str, float]:
        """The model's most likely next words after the context, with their probabilities."""
        prepared = explanation.attribution.prepared
        with torch.no_grad():
            probabilities = prepared.forward(prepared.inputs, *prepared.forward_args)[0]
        top = torch.topk(probabilities, min(TOP_WORDS, probabilities.numel()))
        words = model.vocab.words
        return {words[int(i)]: float(p) for p, i in zip(top.values, top.indices)}

    def panels(self, explanation: Any, folder: Path, summary: dict[str, Any]) -> Panels:
        panels = Panels(highlight_title="words by integrated gradient, scaled by the largest |IG| "
                                        "(* not in the vocabulary)", label_title="top next words")
        record = read_json_file(folder / "explanation.json") or {}
        words = record.get("words") or []
        peak = max([abs(float(w["integrated_gradient"])) for w in words] + [1e-12])
        pieces: list[tuple[str, float | None]] = []
        for k, w in enumerate(words):
            if k:
                pieces.append((" ", None))
            pieces.append((w["word"] + ("*" if w.get("oov") else ""),
                           round(float(w["integrated_gradient"]) / peak, 4)))
        pieces.append((f"  → {record.get('target', summary.get('target', ''))}", None))
        panels.highlight = pieces or None
        if words:
            panels.notes.append(paper_table(words, record, summary))
        table = read_csv_table(folder / "words.csv", "words: integrated gradient and gradient × embedding")
        if table is not None:
            panels.tables.append(table)
        return panels

    def map_picture(self, explanation: Any, values: tuple[torch.Tensor, ...], title: str, *,
                    gradient: bool = False) -> np.ndarray:
        """Over the words, as IG: each word's box coloured by its value summed over the embedding (a
        method's map, or the integrand at α)."""
        per_word = values[0].detach().cpu().double().reshape(-1, values[0].shape[-1]).sum(-1).numpy()
        return words_picture(list(explanation.words), per_word[-len(explanation.words):], title)


def paper_table(words: list[dict[str, Any]], record: dict[str, Any], summary: dict[str, Any]) -> str:
    """The paper's table (word, integrated gradient, gradient × embedding) in Markdown, words escaped."""
    rows = ["| word | integrated gradient | gradient × embedding |", "| --- | ---: | ---: |"]
    for w in words:
        rows.append(f"| {escape_markdown(w['word'] + ('*' if w.get('oov') else ''))} | {float(w['integrated_gradient']):.4f} | "
                    f"{float(w.get('gradient_x_embedding', w.get('gradient', float('nan')))):.4f} |")
    target = escape_markdown(record.get("target", summary.get("target", "")))
    return (f"**The paper's table** for the next word {target} (integrated gradients vs gradient × embedding)"
            "\n\n" + "\n".join(rows))


def words_picture(words: Sequence[str], values: np.ndarray, title: str) -> np.ndarray:
    """The words in reading order, each on a box of igkit's diverging colours (this picture's own
    scale), wrapped to lines of about :data:`LINE_CHARS` characters; words are drawn as plain text
    (no math, no markup), each box as wide as its word."""
    from matplotlib.figure import Figure

    peak = colours.shared_peak([values])
    places, column, line = [], 0, 0
    for word in words:
        width = len(word) + 2
        if column and column + width > LINE_CHARS:
            column, line = 0, line + 1
        places.append((column, line))
        column += width
    lines = line + 1
    fig = Figure(figsize=(6.4, 0.9 + 0.45 * lines), dpi=100)
    ax = fig.add_axes((0.02, 0.12, 0.96, 0.72))
    ax.set_xlim(0, LINE_CHARS)
    ax.set_ylim(lines, 0)
    ax.set_axis_off()
    for (column, line), word, value in zip(places, words, values):
        fill = colours.signed_colour(float(value), peak)
        ax.text(column + 0.5, line + 0.5, word, ha="left", va="center", fontsize=10, family="monospace",
                color=colours.ink(fill), parse_math=False,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": fill, "edgecolor": "#888888", "linewidth": 0.5})
    fig.suptitle(title, fontsize=9, y=0.98)
    fig.text(0.5, 0.02, f"{colours.legend()} · scale ±{peak:.3g}", ha="center", va="bottom", fontsize=6.5,
             color="#333333")
    return figure_array(fig)


def app_view(domain: Any) -> TextView:
    return TextView(domain)
