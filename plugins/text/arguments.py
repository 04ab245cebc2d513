"""Parsers of the text domain's whole-number options (``--window``, ``--limit``, ``--generate`` ...).

argparse calls them, so a bad value stops with "expected a whole number ≥ 1, got 'x'" beside the
option's name rather than a traceback.
"""
from __future__ import annotations

import argparse


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {least}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """A whole number ≥ 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number ≥ 0."""
    return _whole_number(text, 0)
