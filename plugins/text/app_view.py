"""The text tab of ``igkit app``: what it shows of the files ``igkit text explain`` writes.

Read by :func:`igkit.app.views.find_view`; imported only when the app runs. The words and
their attributions come from the item folder's ``explanation.json``, the paper's table
from its ``table.md``; the top next words are the model's probabilities for the context.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from igkit.app.views import AppView, Panels, generic_map_picture, read_csv_table, read_json_file

#: next words offered (and shown with their probabilities)
TOP_WORDS = 10
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
    model_settings = ()  # the language model does not depend on the target or the context options

    def __init__(self, domain: Any) -> None:
        super().__init__(domain)
        self.intro = ("**Text**: which context words made the language model predict the next word "
                      "(integrated gradients over the word embeddings; probability units, adding up to "
                      "p(next word) − p(all-zero embeddings)). Pick another next word to explain it instead.")

    def settings(self, target: str | None) -> dict[str, Any]:
        return {"target": target.strip()} if target and target.strip() else {}

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
        table_md = folder / "table.md"
        if table_md.is_file():
            panels.notes.append("**The paper's table** (integrated gradients vs gradient × embedding)\n\n"
                                + table_md.read_text(encoding="utf-8"))
        table = read_csv_table(folder / "words.csv", "words: integrated gradient and gradient × embedding")
        if table is not None:
            panels.tables.append(table)
        return panels

    def map_picture(self, explanation: Any, values: tuple[torch.Tensor, ...], title: str, *,
                    gradient: bool = False) -> np.ndarray:
        """Per word, summed over the embedding (a method's map, or the integrand at α)."""
        return generic_map_picture((values[0].detach().cpu().sum(-1),), f"{title}, per word",
                                   labels=explanation.words)


def app_view(domain: Any) -> TextView:
    return TextView(domain)
