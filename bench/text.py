"""Text cases: the PTB language model's next-word probability (cases 3 and 4).

A prediction is the ``WINDOW`` words before a position of the PTB validation set
and the word that actually came there. igkit goes through the plugin's
``explain_next_word`` (many contexts per call, their path points share passes,
the decoder runs at the last position only); Captum runs
``LayerIntegratedGradients`` on the embedding layer one prediction at a time, on
the model as written (logits at every position). Captum given igkit's
last-position trick is timed too and reported beside it, so the table says how
much of the ratio is that trick. Captum takes baselines as token ids, so both
sides use the embedding of ``<unk>`` as the baseline here (the cost does not
depend on it), which makes their attributions directly comparable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients

from igkit import module_output
from igkit.plugins.text.attribution import explain_next_word, next_word_probability
from igkit.plugins.text.checkpoint import LanguageModel
from igkit.plugins.text.contexts import positions_of

from .convergence import Problem, Workload
from .measure import milliseconds_per_path_point, sandwiched, seconds
from .report import Row
from .throughput import throughput_row

WINDOW = 20
BASELINE_WORD = "<unk>"


def validation_predictions(ptb_dir: Path, lm: LanguageModel, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` contexts ``[n, WINDOW]`` evenly spread over ``ptb.valid.txt``, and their next words ``[n]``."""
    contexts = list(positions_of(ptb_dir / "ptb.valid.txt", lm.vocab, WINDOW))
    picks = np.linspace(0, len(contexts) - 1, min(n, len(contexts))).round().astype(int)
    ids = torch.tensor([contexts[i].ids for i in picks], dtype=torch.long)
    targets = torch.tensor([contexts[i].target for i in picks], dtype=torch.long)
    return ids, targets


def workload(ptb_dir: Path, lm: LanguageModel, n_examples: int) -> Workload:
    """The validation predictions the model is surest of (probability saturates), zero-embedding baseline.

    Both contenders get the same forward (decoder at the last position only): case 3
    compares integration schemes, not forwards.
    """
    model = lm.model.eval()
    forward = next_word_probability(model, model.embedding, output_layer=model.decoder)
    ids, targets = validation_predictions(ptb_dir, lm, 50 * n_examples)
    embeddings = module_output(model, model.embedding, ids)
    with torch.no_grad():
        p = forward(embeddings, ids).gather(1, targets[:, None])[:, 0]
    chosen = torch.argsort(p, descending=True)[:n_examples].tolist()
    problems = [Problem((embeddings[i:i + 1],), (torch.zeros_like(embeddings[i:i + 1]),), int(targets[i]),
                        (ids[i:i + 1],)) for i in chosen]
    return Workload("PTB LSTM next word", forward, problems,
                    {"window": WINDOW, "probabilities": p[chosen].tolist()})


def run_throughput(ptb_dir: Path, lm: LanguageModel, n_predictions: int, steps: int) -> list[Row]:
    """Predictions per second: igkit's batched explain vs Captum LayerIntegratedGradients one at a time."""
    model = lm.model.eval()
    ids, targets = validation_predictions(ptb_dir, lm, n_predictions)
    baseline_ids = torch.full_like(ids, lm.vocab.index[BASELINE_WORD])
    baselines = module_output(model, model.embedding, baseline_ids)
    ours: dict[str, torch.Tensor] = {}

    def igkit_run() -> None:
        ours["ig"] = explain_next_word(model, model.embedding, ids, targets, baselines=baselines,
                                       steps=steps, method="gausslegendre",
                                       output_layer=model.decoder).result.attributions

    def last_word_probability(token_ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(token_ids)[0][:, -1], dim=-1)

    def last_word_probability_last_position(token_ids: torch.Tensor) -> torch.Tensor:
        handle = model.decoder.register_forward_pre_hook(lambda _m, args: (args[0][:, -1:],))
        try:
            return last_word_probability(token_ids)
        finally:
            handle.remove()

    theirs: list[torch.Tensor] = []

    def captum_run(forward=last_word_probability) -> None:
        lig = LayerIntegratedGradients(forward, model.embedding)
        theirs.clear()
        for k in range(ids.shape[0]):
            theirs.append(lig.attribute(ids[k:k + 1], baseline_ids[k:k + 1], target=int(targets[k]),
                                        n_steps=steps, method="gausslegendre").detach())

    igkit_times, captum_time = sandwiched(igkit_run, captum_run)
    captum_attr = torch.cat(theirs)
    difference = float((ours["ig"] - captum_attr).abs().max() / captum_attr.abs().max())
    same_forward_time = seconds(lambda: captum_run(last_word_probability_last_position))
    n = ids.shape[0]
    versus_same_forward = (n / float(np.median(igkit_times))) / (n / same_forward_time)
    forward = next_word_probability(model, model.embedding, output_layer=model.decoder)
    curve = milliseconds_per_path_point(forward, (baselines[:1],), (ids[:1],), int(targets[0]),
                                        (1, 10, steps, 5 * steps))
    row = throughput_row("PTB validation next words", n, igkit_times, captum_time, steps,
                         "Captum LIG one at a time", 5.0, "pred/s", curve,
                         {"window": WINDOW, "baseline": f"embedding of {BASELINE_WORD}",
                          "igkit_extra_work": "explain_next_word also computes gradient x input and the "
                                              "predicted word (about one more path point per prediction)",
                          "max_attribution_difference_vs_captum": difference,
                          "captum_with_last_position_decoder_seconds": same_forward_time,
                          "igkit_over_captum_with_last_position_decoder": versus_same_forward})
    row.why_missed = (f"{row.why_missed}. Of the ratio, the decoder at the last position only is the "
                      f"part batching cannot give: Captum handed the same trimmed model gets "
                      f"{n / same_forward_time:.3g} pred/s, igkit {versus_same_forward:.2f}x that; the "
                      f"LSTM's own forward and backward are the rest of each point's cost")
    return [row]
