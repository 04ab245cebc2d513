"""The ``text`` domain, so ``igkit explain --domain text "CONTEXT"`` works like the other domains."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from igkit import IGResult, module_output
from igkit.domain import Domain, Prepared
from igkit.methods import grad_x_input

from .attribution import next_word_probability
from .checkpoint import LanguageModel, load_language_model
from .contexts import parse_context
from .explainer import Explanation
from .render import html_page, markdown_table, terminal_table


class TextDomain(Domain):
    """A context sentence → the probability of the model's predicted next word, per context word."""

    name = "text"
    description = "next-word prediction of a word-level LSTM language model (shipped: Penn Treebank)"

    def load_model(self, source: str | None) -> LanguageModel:
        return load_language_model(source)

    def prepare(self, model: LanguageModel, item: str) -> Prepared:
        context = parse_context(item, model.vocab)
        ids = torch.tensor([context.ids], dtype=torch.long)
        net = model.model.eval()
        forward = next_word_probability(net, net.embedding, output_layer=net.decoder)
        embeddings = module_output(net, net.embedding, ids)
        with torch.no_grad():
            predicted = int(forward(embeddings, ids).argmax(-1))
        return Prepared(name=item, inputs=embeddings, forward=forward, target=predicted, forward_args=(ids,),
                        label=model.vocab.words[predicted], context={"context": context})

    def importance(self, result: IGResult, prepared: Prepared) -> dict[str, np.ndarray]:
        return {"words": result.attributions[0].sum(-1).detach().numpy()}

    def render(self, result: IGResult, prepared: Prepared, out_dir: Path) -> list[Path]:
        gradient = grad_x_input(prepared.forward, prepared.inputs, target=prepared.target,
                                forward_args=prepared.forward_args)
        exp = Explanation(context=prepared.context["context"], target_word=prepared.label,
                          predicted_word=prepared.label, ig=self.importance(result, prepared)["words"],
                          gradient=gradient[0].sum(-1).detach().numpy(), result=result, example=0, seconds=0.0)
        paths = [out_dir / "table.txt", out_dir / "table.md", out_dir / "attribution.html"]
        paths[0].write_text(terminal_table(exp) + "\n")
        paths[1].write_text(markdown_table(exp))
        paths[2].write_text(html_page([exp]))
        return paths
