"""The text domain's explain settings, declared once: ``igkit text explain`` options, the keywords
of ``igkit.explain("text", ...)``, ``run.json`` and the README's option table all come from here
(:mod:`igkit.settings`). Light on purpose: ``igkit --help`` reads it.
"""
from __future__ import annotations

from dataclasses import dataclass

from igkit.settings import setting

from .contexts import DEFAULT_MAX_WORDS, DEFAULT_WINDOW

#: the ``--help`` section of the options only transformers causal LMs take
CAUSAL = "transformers causal LMs (--model FOLDER, a cached Hub id, or ptb-gpt2)"
#: explain options that only transformers causal LMs take (the LSTM refuses them by name)
TRANSFORMERS_SETTINGS = ("contrast", "generate", "baseline", "last_tokens", "max_memory", "trust_remote_code")


@dataclass(frozen=True)
class TextSettings:
    """What ``igkit text explain`` may be told besides its contexts."""

    input: tuple[str, ...] = setting(
        (), type=tuple, item=str, repeat=True, source=True, metavar="FILE",
        help="file with one context per line (CONTEXT<TAB>TARGET names the target); may be repeated")
    target: str | None = setting(None, help="explain this next word instead of the model's prediction "
                                            "(none: the model's own prediction)")
    every_position: bool = setting(False, help="read --input as a tokenised corpus and explain the word "
                                               "that follows at every position")
    window: int = setting(DEFAULT_WINDOW, minimum=1, help="context words per position (--every-position)")
    start: int = setting(0, minimum=0, help="skip this many positions first (--every-position)")
    limit: int | None = setting(None, type=int, minimum=1,
                                help="at most this many positions (--every-position; none: all)")
    max_words: int = setting(DEFAULT_MAX_WORDS, minimum=1,
                             help="longer contexts are cut to their last MAX_WORDS words, with a warning "
                                  "(the shipped model was trained on 20-word windows)")
    scale: bool = setting(False, help="print attributions x1e-3 (for tiny predictions, as in the paper's "
                                      "Figure 10)")
    shared_scale: bool = setting(False, only_if_set=True,
                                 help="colour the words of every context in the run's attribution.html on one "
                                      "scale (the run's largest |IG|); without it each context has its own "
                                      "(the legend says which)")
    contrast: str | None = setting(None, group=CAUSAL, metavar="WORD",
                                   help="explain log p(target) - log p(WORD): why the target rather than WORD")
    generate: int | None = setting(None, type=int, minimum=1, group=CAUSAL, metavar="N",
                                   help="generate N tokens greedily and attribute each over the prompt and the "
                                        "tokens generated before it")
    baseline: str = setting("zero", group=CAUSAL,
                            help="embedding the tokens are scaled from: zero, eos, pad or token:TEXT")
    last_tokens: int | None = setting(None, type=int, minimum=1, group=CAUSAL, metavar="N",
                                      help="explain only the last N tokens of each context (needed when a "
                                           "context is longer than the model's positions)")
    max_memory: str | None = setting(None, group=CAUSAL, metavar="SIZE",
                                     help="activation memory per pass of path points, e.g. 2GiB or 512MiB "
                                          "(none: 2GiB); long contexts get fewer path points per pass")
    trust_remote_code: bool = setting(False, group=CAUSAL,
                                      help="run Python code that ships with the model (auto_map); off unless "
                                           "given")
