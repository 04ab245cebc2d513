"""User text made safe to print on a terminal: control characters escaped, long values cut.

A CSV cell, a context or a file name can hold ESC or BEL bytes that a terminal would obey
(move the cursor, rewrite the screen, change the title), right-to-left overrides that
reorder what is shown, and megabytes of text. Every place igkit prints such a value (item
sources, skip reasons, warnings, errors, the progress line) passes it through
:func:`printable` first; files on disk keep the value as it was.
"""
from __future__ import annotations

#: the most characters of one value printed before it is cut
DEFAULT_LIMIT = 200
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e", "\x07": "\\a", "\b": "\\b"}


def printable(value: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """``str(value)`` with every character a terminal would not simply show (controls, format
    marks, separators other than the space) written as an escape (``\\e``, ``\\x00``, ``\\u202e``)
    and, past ``limit`` characters, cut with a note of the full length."""
    text = value if isinstance(value, str) else str(value)
    cut = limit is not None and len(text) > limit
    shown = text[:limit] if cut else text
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else _escape(c) for c in shown)
    return f"{shown}… ({len(text):,} characters)" if cut else shown


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
