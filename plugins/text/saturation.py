"""Figure 8: the next-word probability as all context embeddings are scaled by α from 0 to 1."""
from __future__ import annotations

from pathlib import Path

import torch

from igkit import module_output, score_curve

from .attribution import next_word_probability
from .checkpoint import LanguageModel


def random_windows(ids: torch.Tensor, count: int, words: int, seed: int = 0) -> torch.Tensor:
    """``[count, words]`` windows from random places of a token stream (seeded: same windows every run)."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - words, (count,), generator=generator)
    return torch.stack([ids[s:s + words] for s in starts.tolist()])


@torch.no_grad()
def saturation_curves(lm: LanguageModel, windows: torch.Tensor, alphas: int = 51) -> dict:
    """Probability of each window's predicted next word along α (the prediction at α = 1)."""
    model = lm.model.eval()
    forward = next_word_probability(model, model.embedding, output_layer=model.decoder)
    embeddings = module_output(model, model.embedding, windows)
    predicted = forward(embeddings, windows).argmax(-1)
    curve = score_curve(forward, embeddings, target=predicted, alphas=alphas, forward_args=(windows,))
    return {"alpha": curve["alpha"].tolist(), "probability": curve["score"].tolist(),
            "contexts": [" ".join(lm.vocab.words[i] for i in row) for row in windows.tolist()],
            "predicted": [lm.vocab.words[i] for i in predicted.tolist()]}


def write_saturation(curves: dict, out_dir: Path) -> list[Path]:
    """``saturation.png`` (a line per window, named in the legend by its number and predicted word),
    ``saturation.csv`` and ``saturation.json``: igkit's saturation sheet."""
    from igkit.outputs.saturation_sheet import Curve, Panel, write_saturation as write_sheet

    n = len(curves["probability"])
    lines = [Curve(f"{w}: {curves['predicted'][w]}", {"probability": probs},
                   {"window": w, "context": curves["contexts"][w], "predicted": curves["predicted"][w]})
             for w, probs in enumerate(curves["probability"])]
    panel = Panel("probability", "softmax probability of the predicted next word",
                  f"Saturation of the LSTM language model ({n} test windows)")
    return write_sheet(out_dir, curves["alpha"], lines, [panel], xlabel="α (scale of all context word embeddings)",
                       legend_title="window: next word", document=curves, dpi=130)
