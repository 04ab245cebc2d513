"""Tables and pages of next-word attributions (Figures 9, 10): terminal, Markdown, CSV, HTML.

Everything is drawn from an explanation *record*, the dictionary an item folder keeps as
``explanation.json`` (:meth:`TextExplanation.to_dict
<igkit.plugins.text.domain.TextExplanation.to_dict>`), so the tables over a whole run are
built from the item folders and a resumed run gets them whole.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.records import read_json, write_csv, write_json, write_text

OOV_MARK = "*"
#: the baseline's probability is shown when it is at least this share of the prediction's
BASELINE_SHOWN_ABOVE = 0.01
WORD_COLUMNS = ("position", "word", "oov", "integrated_gradient", "gradient")

Record = dict[str, Any]


def headline(record: Record) -> str:
    """"Prediction for WORD: p, total integrated gradient: s" (+ the baseline's score when it matters)."""
    line = (f"Prediction for {record['target']}: {record['score_input']:.4f}, total integrated gradient: "
            f"{record['attribution_sum']:.4f}")
    if record["score_baseline"] > BASELINE_SHOWN_ABOVE * record["score_input"]:
        line += f" (baseline score: {record['score_baseline']:.4f})"
    if record["target"] != record["predicted"]:
        line += f" [the model's own prediction: {record['predicted']}]"
    return line


def completeness_line(record: Record) -> str:
    """The check that the attributions add up to p(input) − p(baseline)."""
    gap = record["score_input"] - record["score_baseline"]
    return (f"completeness: total IG {record['attribution_sum']:.6f} vs p(context) - p(baseline) {gap:.6f}: "
            f"error {100 * record['completeness_error']:.3f}% ({record['path_points']} path points, "
            f"{record['method']})")


def notes(record: Record) -> list[str]:
    """Lines under a table: unknown words, a context cut to its last words."""
    lines = []
    if any(w["oov"] for w in record["words"]):
        lines.append(f"{OOV_MARK} not in the vocabulary: read as <unk>")
    if record.get("truncated_from"):
        lines.append(f"the context had {record['truncated_from']} words; only its last "
                     f"{len(record['words'])} were explained (--max-words)")
    return lines


def _columns(record: Record) -> tuple[str, str, float]:
    suffix, factor = (" (*1e-3)", 1e3) if record.get("scale") else ("", 1.0)
    return f"Integrated gradients{suffix}", f"Gradients{suffix}", factor


def _word(word: dict[str, Any]) -> str:
    return word["word"] + (OOV_MARK if word["oov"] else "")


def terminal_table(record: Record) -> str:
    """An aligned plain-text table: word | IG | gradient, headline above, check below."""
    ig_head, grad_head, factor = _columns(record)
    words = record["words"]
    width = max([len("Sentence")] + [len(_word(w)) + 1 for w in words])
    lines = [headline(record), f"{'Sentence':<{width}}  {ig_head:>26}  {grad_head:>20}"]
    lines += [f"{_word(w):<{width}}  {factor * w['integrated_gradient']:>26.4f}  {factor * w['gradient']:>20.4f}"
              for w in words]
    lines.append(completeness_line(record))
    return "\n".join(lines + notes(record))


def markdown_table(record: Record) -> str:
    """The same table in Markdown, to paste into a paper or an issue."""
    ig_head, grad_head, factor = _columns(record)
    lines = [f"**{headline(record)}**", "", f"| Sentence | {ig_head} | {grad_head} |", "|---|---:|---:|"]
    lines += [f"| {_word(w)} | {factor * w['integrated_gradient']:.4f} | {factor * w['gradient']:.4f} |"
              for w in record["words"]]
    lines += ["", completeness_line(record)]
    lines += ["", *notes(record)] if notes(record) else []
    return "\n".join(lines).replace("<unk>", "`<unk>`") + "\n"


def word_columns(record: Record) -> tuple[str, ...]:
    """``WORD_COLUMNS``, then one column per extra method (``--methods``)."""
    return (*WORD_COLUMNS, *record.get("methods", ()))


def word_rows(record: Record) -> Iterable[list[Any]]:
    """One row per context word (:func:`word_columns`): the table grows linearly with the context."""
    methods = record.get("methods", ())
    for w in record["words"]:
        yield [w["position"], w["word"], int(w["oov"]), w["integrated_gradient"], w["gradient"],
               *(w[m] for m in methods)]


def _colour(value: float, peak: float) -> str:
    """Green for positive, red for negative; opacity ∝ |value| / the largest |value| of the context."""
    strength = min(abs(value) / peak, 1.0) if peak > 0 else 0.0
    rgb = "0,150,0" if value >= 0 else "210,0,0"
    return f"rgba({rgb},{0.85 * strength:.3f})"


def html_page(records: Sequence[Record], title: str = "Next-word attribution") -> str:
    """A self-contained page: each context with words coloured by IG, and its table."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             ".ctx span{padding:2px 4px;margin:1px;border-radius:3px;display:inline-block}"
             ".next{border:1px dashed #555}table{border-collapse:collapse;margin:.5em 0 2em}"
             "td,th{padding:2px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>Green: the word raised the probability of the next word; "
             "red: it lowered it (integrated gradients, embeddings scaled toward zero). "
             f"Words marked {OOV_MARK} are out of vocabulary and were read as &lt;unk&gt;.</p>"]
    for record in records:
        ig_head, grad_head, factor = _columns(record)
        words = record["words"]
        peak = max((abs(w["integrated_gradient"]) for w in words), default=0.0)
        spans = "".join(f"<span style='background:{_colour(w['integrated_gradient'], peak)}' "
                        f"title='IG {w['integrated_gradient']:.4g}'>{html.escape(_word(w))}</span>"
                        for w in words)
        rows = "".join(f"<tr><td>{html.escape(_word(w))}</td><td>{factor * w['integrated_gradient']:.4f}</td>"
                       f"<td>{factor * w['gradient']:.4f}</td></tr>" for w in words)
        extra = "".join(f"<br>{html.escape(line)}" for line in notes(record))
        parts.append(f"<h3>{html.escape(record.get('source', ''))}: {html.escape(headline(record))}</h3>"
                     f"<p class='ctx'>{spans}<span class='next'>{html.escape(record['target'])}</span></p>"
                     f"<table><tr><th>Sentence</th><th>{ig_head}</th><th>{grad_head}</th></tr>{rows}</table>"
                     f"<p><small>{html.escape(completeness_line(record))}{extra}</small></p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_item_files(record: Record, folder: Path, *, pictures: bool = True) -> list[str]:
    """One item's files: ``table.txt``, ``table.md``, ``words.csv``, ``explanation.json``
    and, with pictures, ``attribution.html``."""
    write_text(folder / "table.txt", terminal_table(record) + "\n")
    write_text(folder / "table.md", markdown_table(record))
    write_csv(folder / "words.csv", word_columns(record), word_rows(record))
    write_json(folder / "explanation.json", record)
    files = ["table.txt", "table.md", "words.csv", "explanation.json"]
    if pictures:
        write_text(folder / "attribution.html", html_page([record]))
        files.append("attribution.html")
    return files


def write_run_files(out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
    """Over every finished item, from the item folders: ``words.csv`` (one row per word of each
    item, the item's folder and source first), ``tables.md`` and, with pictures, ``attribution.html``."""
    records = [(folder, read_json(folder / "explanation.json")) for folder in folders
               if (folder / "explanation.json").is_file()]
    if not records:
        return []
    write_csv(out_dir / "words.csv", ("item", "source", *word_columns(records[0][1])),
              ([folder.name, record["source"], *row] for folder, record in records
               for row in word_rows(record)))
    write_text(out_dir / "tables.md", "\n".join(f"### {record['source']}\n\n{markdown_table(record)}"
                                                for _, record in records))
    files = ["words.csv", "tables.md"]
    if pictures:
        write_text(out_dir / "attribution.html", html_page([record for _, record in records]))
        files.append("attribution.html")
    return files
