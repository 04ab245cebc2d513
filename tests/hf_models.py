"""Tiny transformers models and tokenizers built in the tests (no download): a byte-level BPE
trained on a few sentences and randomly initialised GPT-2 configurations."""
from __future__ import annotations

from pathlib import Path

SENTENCES = ["the shareholders claimed more than the company paid",
             "the stock market fell sharply on monday , traders said",
             "investors bought more shares of the company than expected",
             "the board met on friday and the market rose"] * 4


def tiny_tokenizer():
    """A fast byte-level BPE tokenizer (offsets available) over :data:`SENTENCES`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(SENTENCES, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<|endoftext|>")


def tiny_gpt2(tokenizer, *, positions: int = 64, width: int = 32, layers: int = 2, seed: int = 0):
    """A randomly initialised GPT-2 in eval mode, float32, for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=positions, n_embd=width, n_layer=layers, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel(config).eval()


def save_tiny(folder: Path, **options) -> Path:
    """A save_pretrained folder of a tiny GPT-2 and its tokenizer."""
    tokenizer = tiny_tokenizer()
    tiny_gpt2(tokenizer, **options).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
