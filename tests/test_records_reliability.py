"""Reading users' files defensively (issue 22, "inputs are trusted too far"): only regular files,
a stated size limit, CSV rows that cannot be read refused one by one with their own line number
while the other rows are used, duplicate columns refused, linear work, and user text escaped
before it reaches a terminal."""
from __future__ import annotations

import csv
import itertools
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from igkit import InputFileError, read_lines, read_table, read_text, write_csv, write_json
from igkit.io import records
from igkit.cli.main import main
from igkit.outputs.printable import printable
from igkit.io.records import MAX_FIELD_CHARS, BadRow

pytestmark = pytest.mark.filterwarnings("ignore::igkit.errors.IgkitWarning")
FAST = ["--steps", "8", "--method", "riemann_middle", "--no-pictures", "--quiet", "--threads", "1"]


def rows_of(path: Path) -> list[tuple[int, dict | BadRow]]:
    return list(read_table(path, bad_rows="yield")[1])


def explain(capsys, *args) -> tuple[int, str, str]:
    code = main(["molecules", "explain", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ only regular files, size-limited
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_named_pipes_and_devices_are_refused_without_blocking(tmp_path, capsys):
    pipe = tmp_path / "mols.csv"
    os.mkfifo(pipe)  # opening it for reading without O_NONBLOCK would wait forever for a writer
    for path in (pipe, Path("/dev/zero")):
        with pytest.raises(InputFileError, match="not a regular file"):
            read_text(path)
    code, _, err = explain(capsys, "--input", pipe, "--out", tmp_path / "out", *FAST)
    assert code == 2 and err.startswith("igkit: error:") and "not a regular file" in err
    assert not (tmp_path / "out").exists()


def test_files_over_the_size_limit_are_refused_with_the_limit(tmp_path):
    path = tmp_path / "big.smi"
    path.write_text("C" * 100)
    with pytest.raises(InputFileError, match="at most 64 bytes"):
        read_text(path, limit=64)
    assert read_text(path, limit=100) == "C" * 100
    assert records.MAX_TEXT_BYTES == 256 * 2**20  # the limit README.md "Input limits" states


# ------------------------------------------------------------------------------ bounded memory
def test_tables_and_lines_stream_and_big_outputs_are_written_in_pieces(tmp_path):
    """A 1.1 MB CSV read row by row, and 2.3 MB of JSON and a big CSV written: Python's own
    allocations peak below 0.5 MB, where the whole text, its lines or one output string would
    each be more than the file. The values read and written are exact."""
    path = tmp_path / "big.csv"
    path.write_text("id,smiles\n" + "".join(f"m{k},c1ccccc1CCO\n" for k in range(60_000)))
    entries = {"items": [{"source": f"big.csv line {k}", "status": "written"} for k in range(30_000)]}
    tracemalloc.start()
    try:
        rows = list(itertools.islice(read_table(path)[1], 3))
        count = sum(1 for _ in read_table(path)[1])
        lines = sum(1 for _ in read_lines(path))
        reading = tracemalloc.get_traced_memory()[1]
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        write_json(tmp_path / "report.json", entries)
        write_csv(tmp_path / "report.csv", ["source", "status"], ([e["source"], e["status"]] for e in entries["items"]))
        writing = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert rows == [(2, {"id": "m0", "smiles": "c1ccccc1CCO"}), (3, {"id": "m1", "smiles": "c1ccccc1CCO"}),
                    (4, {"id": "m2", "smiles": "c1ccccc1CCO"})]
    assert count == 60_000 and lines == 60_002  # the header, the rows and the empty line after the last
    assert json.loads((tmp_path / "report.json").read_text()) == entries
    assert (tmp_path / "report.csv").read_text().count("\n") == 30_001
    assert path.stat().st_size > 2**20 and (tmp_path / "report.json").stat().st_size > 2 * 2**20
    assert reading < 2**19 and writing < 2**19, (reading, writing)


def test_an_overlong_line_is_refused_with_its_line_before_any_row_is_read(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_bytes(b"id,smiles\nm1,CCO\nm2," + b"C" * records.MAX_LINE_CHARS + b"\n")
    with pytest.raises(InputFileError, match=r"mols.csv, line 3: longer than 8,388,608 characters"):
        read_table(path)


# ------------------------------------------------------------------------------------- CSV tables
def test_each_bad_row_is_refused_at_its_own_line_and_the_others_are_read(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text(
        "id,smiles\n"
        'm1,"CCO\n'                      # 2: a quote never closed here ...
        "m2,CCN\n"                       # 3: ... must not swallow the rows after it
        'm3,"multi\nline",\n'            # 4-5: a legitimate quoted line break (and an empty extra cell)
        'm4,"a"b\n'                      # 6: stray characters after a quoted cell
        f"m5,{'C' * (MAX_FIELD_CHARS + 1)}\n"  # 7: a cell over the limit
        "m6,CCC,surplus\n"               # 8: more cells than columns
        "\n"
        "m7,c1ccccc1\n",                 # 10: still read, at its own line
        encoding="utf-8")
    found = rows_of(path)
    assert [line for line, _ in found] == [2, 3, 4, 6, 7, 8, 10]
    row = dict(found)
    assert row[3] == {"id": "m2", "smiles": "CCN"} and row[10] == {"id": "m7", "smiles": "c1ccccc1"}
    assert row[4] == {"id": "m3", "smiles": "multi\nline"}
    assert "a quote opened on this line runs on to line 4" in row[2].reason
    assert "quoted cell is followed by other characters" in row[6].reason
    assert f"{MAX_FIELD_CHARS + 1:,} characters" in row[7].reason and "131,072" in row[7].reason
    assert "3 cells but the header names 2 columns" in row[8].reason
    with pytest.raises(InputFileError, match=r"mols.csv, line 2: a quote opened on this line runs on"):
        list(read_table(path)[1])  # the default: the first bad row is an error naming its line


def test_a_quote_that_swallows_whole_rows_is_refused_and_those_rows_are_read(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text('id,smiles\nm1,"CCO\nm2,CCN\nm3,CCC"\nm4,CCCl\n')
    found = dict(rows_of(path))
    assert "closes only on line 4" in found[2].reason
    assert found[3] == {"id": "m2", "smiles": "CCN"} and found[5] == {"id": "m4", "smiles": "CCCl"}


def test_duplicate_header_columns_are_refused(tmp_path, capsys):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles,smiles\nm1,CCO,CCN\n")
    with pytest.raises(InputFileError, match=r"names column 'smiles' twice \(columns 2 and 3\)"):
        read_table(path)
    code, _, err = explain(capsys, "--input", path, "--out", tmp_path / "out", *FAST)
    assert code == 2 and "twice" in err and "Traceback" not in err


def test_bad_rows_through_the_cli_lose_no_other_row_and_name_their_lines(tmp_path, capsys):
    path = tmp_path / "mols.csv"
    path.write_text('id,smiles\nm1,CCO\nm2,"C\nC"\nm3,"CCN\nm4,c1ccccc1O\n'
                    f"m5,{'C' * (MAX_FIELD_CHARS + 5)}\nm6,CCCl\n")
    out = tmp_path / "out"
    code, _, err = explain(capsys, "--input", path, "--id-col", "id", "--out", out, *FAST)
    assert code == 1, err
    items = {e["source"]: e for e in json.loads((out / "report.json").read_text())["items"]}
    status = {source.rsplit(" ", 1)[-1]: e["status"] for source, e in items.items()}
    # line 3-4 holds a SMILES with a line break (refused as whitespace), line 5 an unclosed quote
    assert status == {"2": "written", "3": "skipped", "5": "skipped", "6": "written", "7": "skipped",
                      "8": "written"}
    assert "a quote opened on this line" in items[f"{path} line 5"]["reason"]
    assert "131,072" in items[f"{path} line 7"]["reason"]
    assert f"{path} line 7" in err and "CCCCCCCCCC" * 100 not in err  # the long cell is not echoed


def test_reading_stays_linear_in_the_rows_however_many_are_bad(tmp_path, monkeypatch):
    """3,000 rows with unbalanced quotes: every row is reported, and the CSV parser is fed each
    line at most a few times (counted, not timed)."""
    path = tmp_path / "bad.csv"
    path.write_text("id,smiles\n" + "".join(f'm{k},"CCO\n' if k % 2 else f"m{k},C\"C\"\"\n"
                                            for k in range(3000)))
    fed = {"lines": 0}
    real_reader = csv.reader

    def counting_reader(lines, **kwargs):
        def counted():
            for line in lines:
                fed["lines"] += 1
                yield line
        return real_reader(counted(), **kwargs)

    monkeypatch.setattr(records.csv, "reader", counting_reader)
    found = rows_of(path)
    assert len(found) == 3000
    assert fed["lines"] <= 3 * 3001


# ------------------------------------------------------------------------------ terminal escaping
def test_printable_escapes_control_characters_and_cuts_long_values():
    assert printable("ok\x1b[2J\x07\u202eend") == "ok\\e[2J\\a\\u202eend"
    assert printable("tab\there\nnext\x00") == "tab\\there\\nnext\\x00"
    assert printable("é 中 ünïcode") == "é 中 ünïcode"
    cut = printable("x" * 100_000, 50)
    assert cut.startswith("x" * 50) and cut.endswith("(100,000 characters)") and len(cut) < 80


def test_control_characters_from_a_csv_never_reach_the_terminal(tmp_path, capsys):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\nbad\x1b]0;owned\x07,C\x1b[31mC\nok,CCO\n")
    code, out, err = explain(capsys, "--input", path, "--id-col", "id", "--out", tmp_path / "out", *FAST)
    assert code == 1
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream
    assert "C\\e[31mC" in err
    reasons = [e for e in json.loads((tmp_path / "out" / "report.json").read_text())["items"]
               if e["status"] == "skipped"]
    assert len(reasons) == 1  # the file keeps the value as it was; only the terminal copy is escaped


def test_a_huge_token_is_cut_in_the_printed_warning(tmp_path, capsys):
    token = "z" * 100_000
    code = main(["text", "explain", f"the {token} rose", "--out", str(tmp_path / "out"), "--steps", "4",
                 "--method", "riemann_middle", "--no-pictures", "--quiet", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "igkit: warning:" in err and token not in err and len(err) < 10_000


def test_control_characters_in_a_text_context_never_reach_the_terminal(tmp_path, capsys):
    code = main(["text", "explain", "the \x1b[31mstock\x07 rose", "--out", str(tmp_path / "out"), "--steps", "4",
                 "--method", "riemann_middle", "--no-pictures", "--quiet", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "\\e[31mstock\\a" in captured.out  # the table and the summary line show the word, escaped
    for stream in (captured.out, captured.err):
        assert "\x1b" not in stream and "\x07" not in stream


def test_thousands_of_bad_rows_do_not_rewrite_the_report_per_row(tmp_path, capsys, monkeypatch):
    """3,000 invalid rows and one good one: every row is reported, and ``report.json`` is written
    a bounded number of times, not once per row (which made such a file take quadratic time)."""
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\n" + "".join(f"m{k},X{k}\n" for k in range(3000)) + "good,CCO\n")
    writes = {"report": 0}
    real_replace = os.replace

    def counting_replace(src, dst, *args, **kwargs):
        writes["report"] += Path(dst).name == "report.json"
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", counting_replace)
    out = tmp_path / "out"
    code, _, err = explain(capsys, "--input", path, "--id-col", "id", "--out", out, *FAST)
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["skipped"] == 3000 and report["counts"]["written"] == 1
    assert err.count("skipped ") == 3000
    assert writes["report"] <= 50, writes


def test_a_huge_unknown_word_is_cut_in_the_python_warning_too():
    import igkit

    token = "q" * 100_000
    with pytest.warns(igkit.IgkitWarning, match="not in the model's vocabulary") as caught:
        found = igkit.explain("text", [f"the {token} rose"], integration={"steps": 4})
    assert len(found) == 1
    messages = [str(w.message) for w in caught]
    assert all(token not in m and len(m) < 2_000 for m in messages), [len(m) for m in messages]
