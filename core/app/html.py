"""Everything the page shows as Markdown or HTML goes through here, so user strings show as text.

A context such as ``the <unk> said`` or a SMILES such as ``[NH4+]`` is data, never markup: it is
HTML-escaped (``<`` → ``&lt;``) and Markdown-escaped (``*``, ``_``, ``[``, … get a backslash)
before it reaches a Markdown component. Pictures are shown in a grid of ``<figure>`` elements
that keep each picture whole (scaled to the column, never cropped).
"""
from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: characters that start Markdown (or Gradio's LaTeX) anywhere in a line
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
#: what starts a heading, a quote, a list or a numbered list at the beginning of a line
_LINE_START = re.compile(r"^(\s*)([#+\-]|\d+(?=[.)]))")

PICTURE_GRID_CSS = """
.igkit-pictures { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.igkit-pictures figure { margin: 0; border: 1px solid #e0e0e0; border-radius: 6px; padding: 6px;
                         background: white; }
.igkit-pictures img { width: 100%; height: auto; display: block; object-fit: contain; }
.igkit-pictures figcaption { font-size: 90%; color: #333; margin-top: 4px; overflow-wrap: anywhere; }
.igkit-pictures-wide { grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
.igkit-words { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px; }
.igkit-words-title { font-size: 90%; color: #333; margin-bottom: 6px; }
.igkit-words-line { font-size: 120%; line-height: 2.1; }
.igkit-word { padding: 2px 5px; border-radius: 4px; border: 1px solid #999; white-space: pre; }
.igkit-plain { white-space: pre; }
"""


def escape_html(text: Any) -> str:
    """``text`` safe inside HTML (quotes too)."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: Any) -> str:
    """``text`` shown literally by a Markdown component: HTML-escaped, Markdown specials backslashed,
    line breaks turned into spaces, and a leading ``#``/``-``/``1.`` kept from starting a block."""
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)
    return _LINE_START.sub(_guard_line_start, escaped)


def _guard_line_start(match: re.Match) -> str:
    space, mark = match.group(1), match.group(2)
    return f"{space}{mark}\\" if mark[0].isdigit() else f"{space}\\{mark}"  # "12\." or "\#"


def error_html(message: str) -> str:
    """An error as the page shows it: one sentence, escaped, in a red box."""
    sentence = message.strip()
    if sentence and sentence[0].islower():
        sentence = sentence[0].upper() + sentence[1:]
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return f"<div class='igkit-error' role='alert'>⚠️ {escape_html(sentence)}</div>"


def highlighted_words(pieces: Sequence[tuple[str, float | None]], title: str) -> str:
    """Words on igkit's diverging colours (scores in [-1, 1]; None: plain text), escaped, with the legend."""
    from igkit.outputs import colours

    spans = []
    for text, score in pieces:
        if score is None:
            spans.append(f"<span class='igkit-plain'>{escape_html(text)}</span>")
            continue
        fill = colours.signed_colour(float(score), 1.0)
        spans.append(f"<span class='igkit-word' style='background:{fill};color:{colours.ink(fill)}' "
                     f"title='{float(score):+.3f}'>{escape_html(text)}</span>")
    return (f"<div class='igkit-words'><div class='igkit-words-title'>{escape_html(title)}</div>"
            f"<div class='igkit-words-line'>{''.join(spans)}</div>"
            f"<div class='igkit-legend-line'>{escape_html(colours.legend())}</div></div>")


def picture_source(picture: Any) -> str:
    """A picture (an RGB array, or a file path) as a ``data:`` URL, so the page needs no file route."""
    if isinstance(picture, (str, Path)):
        path = Path(picture)
        kind = {".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp"}.get(path.suffix.lower(), "png")
        return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def picture_grid(pictures: Sequence[tuple[Any, str]], *, wide: bool = False, footer: str = "") -> str:
    """Pictures side by side (as many columns as fit, each picture whole), captions escaped;
    ``footer`` is HTML the caller built (a legend)."""
    if not pictures:
        return ""
    figures = "".join(f"<figure><img src='{picture_source(p)}' alt='{escape_html(c)}'>"
                      f"<figcaption>{escape_html(c)}</figcaption></figure>" for p, c in pictures)
    kind = "igkit-pictures igkit-pictures-wide" if wide else "igkit-pictures"
    return f"<div class='{kind}'>{figures}</div>{footer}"
