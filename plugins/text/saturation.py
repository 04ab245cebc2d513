"""Figure 8: the next-word probability as all context embeddings are scaled by α from 0 to 1."""
from __future__ import annotations

from pathlib import Path

import torch

from igkit import module_output, score_curve
from igkit.records import write_csv, write_json

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
    """``saturation.png`` (all curves on one chart; each window's line style is its own, named in the
    legend by its window number and predicted word), ``saturation.csv`` and ``saturation.json``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(curves["probability"])
    fig = Figure(figsize=(8.4, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    dashes = ("-", "--", "-.", ":")
    for w, probs in enumerate(curves["probability"]):   # 10 colours × a dash per ten: every line distinct
        ax.plot(curves["alpha"], probs, linewidth=1.2, color=f"C{w % 10}", linestyle=dashes[(w // 10) % 4],
                label=f"{w}: {curves['predicted'][w]}")
    ax.set_xlabel("α (scale of all context word embeddings)")
    ax.set_ylabel("softmax probability of the predicted next word")
    ax.set_title(f"Saturation of the LSTM language model ({n} test windows)")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    if n <= 40:
        ax.legend(title="window: next word", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=6.5, title_fontsize=7, ncol=1 + n // 21, frameon=False)
    png = out_dir / "saturation.png"
    fig.savefig(png, dpi=130)
    csv_path = write_csv(out_dir / "saturation.csv", ["window", "context", "predicted", "alpha", "probability"],
                         ([w, curves["contexts"][w], curves["predicted"][w], round(a, 4), p]
                          for w, probs in enumerate(curves["probability"])
                          for a, p in zip(curves["alpha"], probs)))
    json_path = write_json(out_dir / "saturation.json", curves)
    return [png, csv_path, json_path]
