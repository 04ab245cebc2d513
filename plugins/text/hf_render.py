"""Files of a causal LM's explanation: per-token and per-word tables (terminal, Markdown, CSV),
the source × readout matrix of a multi-token target or a generated continuation, and an HTML page.

Drawn from the record :meth:`CausalExplanation.to_dict
<igkit.plugins.text.hf_explanation.CausalExplanation.to_dict>` (``explanation.json``), so run-level
tables are rebuilt from the item folders and a resumed run gets them whole.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.outputs.colours import html_legend, ink, signed_colour
from igkit.io.records import read_json, write_csv, write_json, write_text

TOKEN_COLUMNS = ("position", "token", "word_index", "word", "attribution")
WORD_COLUMNS = ("word_index", "word", "attribution")

Record = dict[str, Any]


def headline(record: Record) -> str:
    """"Explained: log p(' than') = -1.2345 (the model's next token: ' than')"."""
    line = f"Explained: {record['score']} = {record['score_input']:.4f}"
    if record["target_kind"] != "contrast":
        line += f" (p = {math.exp(record['score_input']):.4g})"
    if record["target_kind"] in ("next", "contrast", "target"):
        line += f"; the model's next token: {record['predicted']!r}"
    return line


def completeness_line(record: Record) -> str:
    gap = record["score_input"] - record["score_baseline"]
    return (f"completeness: total IG {record['attribution_sum']:.6f} vs score(input) - score(baseline) "
            f"{gap:.6f}: error {100 * record['completeness_error']:.3f}% ({record['path_points']} path points, "
            f"{record['method']}, baseline {record['baseline']})")


def caption(record: Record) -> list[str]:
    """What the outputs explain (igkit.outputs.explains: model and weights digest, target and its
    meaning, F(input) and F(baseline), baseline), less its completeness line: the table has its own."""
    return [line for line in record.get("explains", ()) if not line.startswith("Σ attributions")]


def notes(record: Record) -> list[str]:
    lines = []
    if record.get("truncated_from"):
        lines.append(f"the context had {record['truncated_from']} tokens; only its last "
                     f"{record['prompt_tokens']} were explained (--last-tokens)")
    if record["target_kind"] == "generate":
        lines.append(f"tokens from position {record['prompt_tokens']} on were generated (attributed too)")
    if _has_matrix(record):
        lines.append("tokens.csv has a readout_k column per log-probability k of the score (each explained "
                     "token, or the contrast): its own attribution; the columns add up to the total")
    return lines


def token_columns(record: Record) -> tuple[str, ...]:
    readouts = [f"readout_{k}" for k in range(len(record["readouts"]))] if _has_matrix(record) else []
    return (*TOKEN_COLUMNS, *record["methods"], *readouts)


def word_columns(record: Record) -> tuple[str, ...]:
    return (*WORD_COLUMNS, *(m for m in record["methods"] if record["method_reductions"][m] == "sum"))


def token_rows(record: Record) -> Iterable[list[Any]]:
    for token in record["tokens"]:
        yield [token[c] for c in token_columns(record)]


def word_rows(record: Record) -> Iterable[list[Any]]:
    for word in record["words"]:
        yield [word[c] for c in word_columns(record)]


def _has_matrix(record: Record) -> bool:
    return bool(record["tokens"]) and "readout_0" in record["tokens"][0]


def terminal_table(record: Record) -> str:
    """Words first (what a reader asks about), then tokens; headline above, the check below."""
    width = max([5] + [len(w["word"]) for w in record["words"]] + [len(repr(t["token"])) for t in record["tokens"]]) + 2
    lines = [headline(record), f"{'Word':<{width}}  {'attribution':>12}"]
    lines += [f"{w['word']:<{width}}  {w['attribution']:>12.4f}" for w in record["words"]]
    if len(record["tokens"]) != len(record["words"]):
        lines += ["", f"{'Token':<{width}}  {'attribution':>12}"]
        lines += [f"{t['token']!r:<{width}}  {t['attribution']:>12.4f}" for t in record["tokens"]]
    lines.append(completeness_line(record))
    return "\n".join(lines + caption(record) + notes(record))


def markdown_table(record: Record) -> str:
    def cell(text: str) -> str:
        return html.escape(text).replace("|", "\\|") or "␣"

    lines = [f"**{headline(record)}**", "", "| Word | attribution |", "|---|---:|"]
    lines += [f"| {cell(w['word'])} | {w['attribution']:.4f} |" for w in record["words"]]
    lines += ["", completeness_line(record), *(f"<br>{html.escape(line)}" for line in caption(record)), *notes(record)]
    return "\n".join(lines) + "\n"


def html_page(records: Sequence[Record], title: str = "Causal LM attribution") -> str:
    """Each context's words and tokens coloured by IG (one scale per context)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:72em;margin:2em auto}"
             ".ctx span{padding:2px 3px;margin:1px;border-radius:3px;display:inline-block;white-space:pre}"
             "</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for record in records:
        peak = max([abs(t["attribution"]) for t in record["tokens"]] + [1e-12])
        word_peak = max([abs(w["attribution"]) for w in record["words"]] + [1e-12])
        parts.append(f"<h3>{html.escape(record['source'])}: {html.escape(headline(record))}</h3>")
        parts.append("<p class='caption'><small>" + "<br>".join(html.escape(line) for line in caption(record))
                     + "</small></p>")
        parts.append("<p>Words</p>" + _spans(record["words"], "word", word_peak))
        parts.append(html_legend(word_peak, False, record["score"], "nats"))
        parts.append("<p>Tokens</p>" + _spans(record["tokens"], "token", peak))
        parts.append(html_legend(peak, False, record["score"], "nats"))
        parts.append(f"<p><small>{html.escape(completeness_line(record))}"
                     + "".join(f"<br>{html.escape(n)}" for n in notes(record)) + "</small></p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _spans(rows: Sequence[Record], key: str, peak: float) -> str:
    spans = []
    for row in rows:
        colour = signed_colour(row["attribution"], peak)
        spans.append(f"<span style='background:{colour};color:{ink(colour)}' title='{row['attribution']:.4g}'>"
                     f"{html.escape(row[key])}</span>")
    return "<p class='ctx'>" + "".join(spans) + "</p>"


def write_item_files(record: Record, folder: Path, *, pictures: bool = True) -> list[str]:
    """``tokens.csv``, ``words.csv``, ``table.txt``, ``table.md``, ``explanation.json`` and, with
    pictures, ``attribution.html``."""
    write_csv(folder / "tokens.csv", token_columns(record), token_rows(record))
    write_csv(folder / "words.csv", word_columns(record), word_rows(record))
    write_text(folder / "table.txt", terminal_table(record) + "\n")
    write_text(folder / "table.md", markdown_table(record))
    write_json(folder / "explanation.json", record)
    files = ["tokens.csv", "words.csv", "table.txt", "table.md", "explanation.json"]
    if pictures:
        write_text(folder / "attribution.html", html_page([record]))
        files.append("attribution.html")
    return files


def write_run_files(out_dir: Path, records: Sequence[tuple[Path, Record]], *, pictures: bool = True) -> list[str]:
    """Over every finished item: ``tokens.csv`` and ``words.csv`` (item and source first),
    ``tables.md`` and, with pictures, ``attribution.html``."""
    first = records[0][1]
    write_csv(out_dir / "tokens.csv", ("item", "source", *TOKEN_COLUMNS, *first["methods"]),
              ([folder.name, r["source"], *(t[c] for c in (*TOKEN_COLUMNS, *first["methods"]))]
               for folder, r in records for t in r["tokens"]))
    write_csv(out_dir / "words.csv", ("item", "source", *word_columns(first)),
              ([folder.name, r["source"], *row] for folder, r in records for row in word_rows(r)))
    write_text(out_dir / "tables.md", "\n".join(f"### {r['source']}\n\n{markdown_table(r)}" for _, r in records))
    files = ["tokens.csv", "words.csv", "tables.md"]
    if pictures:
        write_text(out_dir / "attribution.html", html_page([r for _, r in records]))
        files.append("attribution.html")
    return files


def read_records(folders: Sequence[Path]) -> list[tuple[Path, Record]]:
    return [(folder, read_json(folder / "explanation.json")) for folder in folders
            if (folder / "explanation.json").is_file()]
