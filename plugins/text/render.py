"""Tables and pages of next-word attributions (Figures 9, 10): terminal, Markdown, CSV, HTML;
with ``--methods``, a column per method in each (side by side).

Everything is drawn from an explanation *record*, the dictionary an item folder keeps as
``explanation.json`` (:meth:`TextExplanation.to_dict
<igkit.plugins.text.explanation.TextExplanation.to_dict>`), so the tables over a whole run are
built from the item folders and a resumed run gets them whole.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.outputs import colours
from igkit.io.records import read_json, write_csv, write_json, write_text

from .table_columns import OOV_MARK, Record, is_magnitude, method_columns, scale_factor, word_label

#: the baseline's probability is shown when it is at least this share of the prediction's
BASELINE_SHOWN_ABOVE = 0.01
#: words.csv columns; "gradient_x_embedding" is the record's "gradient": gradient · embedding at the input
WORD_COLUMNS = ("position", "word", "oov", "integrated_gradient", "gradient_x_embedding")
#: values below this print as 0.0000 in the tables (4 decimals)
PRINTS_AS_ZERO = 5e-5


def headline(record: Record) -> str:
    """"Prediction for WORD: p, total integrated gradient: s" (+ the baseline's score when it matters)."""
    line = (f"Prediction for {record['target']}: {record['score_input']:.4f}, total integrated gradient: "
            f"{record['attribution_sum']:.4f}")
    if record["score_baseline"] > BASELINE_SHOWN_ABOVE * record["score_input"]:
        line += f" (baseline score: {record['score_baseline']:.4f})"
    if record["target"] != record["predicted"]:
        line += f" [the model's own prediction: {record['predicted']}]"
    return line


def explained(record: Record) -> list[str]:
    """What the table explains (igkit.outputs.explains: model, target, F(input) and F(baseline), baseline,
    warnings), less the completeness line, which :func:`completeness_line` gives in this domain's words."""
    return [line for line in record.get("explains", ()) if not line.startswith("Σ attributions")]


def completeness_line(record: Record) -> str:
    """The check that the attributions add up to p(input) − p(baseline)."""
    gap = record["score_input"] - record["score_baseline"]
    return (f"completeness: total IG {record['attribution_sum']:.6f} vs p(context) - p(baseline) {gap:.6f}: "
            f"error {100 * record['completeness_error']:.3f}% ({record['path_points']} path points, "
            f"{record['method']})")


def notes(record: Record) -> list[str]:
    """Lines under a table: unknown words, a context cut to its last words, and a hint when the
    attributions are too small to show at four decimals (a target the model finds unlikely)."""
    lines = []
    hidden = [w[key] for w in record["words"] for key, _ in method_columns(record)
              if 0 < abs(w[key]) < PRINTS_AS_ZERO]
    if not record.get("scale") and hidden:
        lines.append(f"{len(hidden)} value(s) in this table are below {PRINTS_AS_ZERO:g} "
                     f"(p({record['target']}) = {record['score_input']:.2e}) and print as 0.0000: rerun with "
                     f"--scale to print them x1e3, or read words.csv (full precision)")
    if any(w["oov"] for w in record["words"]):
        lines.append(f"{OOV_MARK} not in the vocabulary: read as <unk>")
    if record.get("truncated_from"):
        lines.append(f"the context had {record['truncated_from']} words; only its last "
                     f"{len(record['words'])} were explained (--max-words)")
    return lines


def methods_note(record: Record) -> list[str]:
    """What the method columns are, under a table that has any."""
    reductions = record.get("method_reductions", {})
    if not reductions:
        return []
    norms = [m for m, r in reductions.items() if r == "norm"]
    sums = [m for m, r in reductions.items() if r != "norm"]
    lines = []
    if sums:
        lines.append(f"{', '.join(sums)}: summed over the word's embedding dimensions (signed, probability units)")
    if norms:
        lines.append(f"{', '.join(norms)}: L2 norm of the gradient over the word's embedding (unsigned)")
    return lines


def terminal_table(record: Record) -> str:
    """An aligned plain-text table: word | IG | gradient | one column per method; headline above,
    check below."""
    factor = scale_factor(record)
    columns = method_columns(record)
    words = record["words"]
    width = max([len("Sentence")] + [len(word_label(w)) + 1 for w in words])
    widths = [26, 20] + [max(12, len(head)) for _, head in columns[2:]]
    lines = [headline(record),
             f"{'Sentence':<{width}}" + "".join(f"  {head:>{n}}" for (_, head), n in zip(columns, widths))]
    lines += [f"{word_label(w):<{width}}" + "".join(f"  {factor * w[key]:>{n}.4f}" for (key, _), n in zip(columns, widths))
              for w in words]
    lines.append(completeness_line(record))
    return "\n".join(lines + explained(record) + methods_note(record) + notes(record))


def markdown_table(record: Record) -> str:
    """The same table in Markdown, to paste into a paper or an issue."""
    factor = scale_factor(record)
    columns = method_columns(record)
    lines = [f"**{headline(record)}**", "", "| Sentence | " + " | ".join(h for _, h in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    lines += ["| " + " | ".join([word_label(w), *(f"{factor * w[key]:.4f}" for key, _ in columns)]) + " |"
              for w in record["words"]]
    lines += ["", completeness_line(record)] + (["", " · ".join(explained(record))] if explained(record) else [])
    extra = methods_note(record) + notes(record)
    lines += ["", *extra] if extra else []
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


def _colour(value: float, peak: float, magnitude: bool = False) -> str:
    """igkit's one convention: red raises, blue lowers (purple: an unsigned magnitude), full colour at ``peak``."""
    return colours.magnitude_colour(value, peak) if magnitude else colours.signed_colour(value, peak)


def column_scales(records: Sequence[Record]) -> dict[str, float]:
    """One colour scale per column over a whole page: its largest |value| in any context there."""
    scales: dict[str, float] = {}
    for record in records:
        for key, _ in method_columns(record):
            peak = max((abs(w[key]) for w in record["words"]), default=0.0)
            scales[key] = max(scales.get(key, 0.0), peak)
    return scales


def html_page(records: Sequence[Record], title: str = "Next-word attribution", shared: bool = False) -> str:
    """A self-contained page: each context with words coloured by IG, and its table with a column
    per method; each column's cells share one colour scale over the whole page. The words above
    each table are on their context's own scale, or with ``shared`` (``--shared-scale``) on the
    page's; the legend says which."""
    scales = column_scales(records)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:72em;margin:2em auto}"
             ".ctx span{padding:2px 4px;margin:1px;border-radius:3px;display:inline-block}"
             ".next{border:1px dashed #555}table{border-collapse:collapse;margin:.5em 0 2em}"
             "td,th{padding:2px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "td.top{outline:2px solid #000;font-weight:bold}.key span{padding:1px 6px;margin:0 4px}"
             "</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='key'>"
             f"<span style='background:{colours.RAISES}'>&nbsp;&nbsp;</span>"
             f"<span style='background:{colours.LOWERS}'>&nbsp;&nbsp;</span> "
             f"{html.escape(colours.legend('the probability of the next word'))}; "
             f"<span style='background:{colours.MAGNITUDE_STOPS[-2]}'>&nbsp;&nbsp;</span> "
             f"{html.escape(colours.MAGNITUDE_LEGEND)} (gradient norms: how sensitive, not which way); "
             "<span style='outline:2px solid #000'>framed</span> each column's top-ranked word. The words "
             "of each context above its table are coloured by integrated gradients (embeddings scaled "
             "toward zero from the baseline, all-zero embeddings): "
             + html.escape(colours.scale_note(max(scales.get("integrated_gradient", 0.0), 1e-12), True)
                           if shared else "each context on its own scale, its largest |IG| "
                           "(--shared-scale puts the whole run on one scale)")
             + f". Words marked {OOV_MARK} are out of vocabulary and were read as &lt;unk&gt;.</p>",
             "<p><b>One colour scale per column over this whole page</b> (full colour = the column's "
             "largest |value| on the page: "
             + html.escape(", ".join(f"{k} {v:.3g}" for k, v in scales.items()))
             + "); columns have different units and scales, so compare colours within a column, "
               "numbers across columns.</p>"]
    for record in records:
        factor = scale_factor(record)
        columns = method_columns(record)
        words = record["words"]
        peak = (scales.get("integrated_gradient", 0.0) if shared
                else max((abs(w["integrated_gradient"]) for w in words), default=0.0))
        spans = "".join(f"<span style='background:{_colour(w['integrated_gradient'], peak)}' "
                        f"title='IG {w['integrated_gradient']:.4g}'>{html.escape(word_label(w))}</span>"
                        for w in words)
        tops = {key: max(range(len(words)), key=lambda i, k=key: words[i][k]) if words else -1
                for key, _ in columns}
        rows = "".join(
            f"<tr><td>{html.escape(word_label(w))}</td>"
            + "".join(f"<td{' class=top' if tops[key] == i else ''} style='background:"
                      f"{_colour(w[key], scales[key], is_magnitude(record, key))}'>{factor * w[key]:.4f}</td>"
                      for key, _ in columns)
            + "</tr>" for i, w in enumerate(words))
        heads = "".join(f"<th>{html.escape(head)}</th>" for _, head in columns)
        extra = "".join(f"<br>{html.escape(line)}" for line in methods_note(record) + notes(record))
        explains = "".join(f"{html.escape(line)}<br>" for line in record.get("explains", ()))
        parts.append(f"<h3>{html.escape(record.get('source', ''))}: {html.escape(headline(record))}</h3>"
                     f"<p><small>{explains}</small></p><p class='ctx'>{spans}<span class='next'>{html.escape(record['target'])}</span></p>"
                     f"<table><tr><th>Sentence</th>{heads}</tr>{rows}</table>"
                     f"<p><small>{html.escape(completeness_line(record))}{extra}</small></p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_item_files(record: Record, folder: Path, *, pictures: bool = True) -> list[str]:
    """One item's files: ``table.txt``, ``table.md``, ``words.csv``, ``explanation.json`` (a column per
    method of ``--methods`` in each) and, with pictures, ``attribution.html`` and, with methods,
    ``methods.png``."""
    write_text(folder / "table.txt", terminal_table(record) + "\n")
    write_text(folder / "table.md", markdown_table(record))
    write_csv(folder / "words.csv", word_columns(record), word_rows(record))
    write_json(folder / "explanation.json", record)
    files = ["table.txt", "table.md", "words.csv", "explanation.json"]
    if pictures:
        write_text(folder / "attribution.html", html_page([record]))
        files.append("attribution.html")
        if record.get("methods"):
            from .figures import methods_figure

            methods_figure(record, folder / "methods.png")
            files.append("methods.png")
    return files


def write_run_files(out_dir: Path, folders: Sequence[Path], *, pictures: bool = True,
                    shared_scale: bool = False) -> list[str]:
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
        write_text(out_dir / "attribution.html", html_page([record for _, record in records], shared=shared_scale))
        files.append("attribution.html")
    return files
