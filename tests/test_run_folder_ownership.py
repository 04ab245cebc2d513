"""A run folder is igkit's alone: what igkit may touch (run.json is its marker), one run at a time
(the lock), damaged state and full disks as one clear error, odd ``--out`` values refused.

These rules live in the driver, the same for every engine; the local engine runs them here
through the CLI as a user would (tests/test_engines_contract.py runs the shared contract on Ray).
"""
from __future__ import annotations

import errno
import json
import os
import socket
import stat
import types
from pathlib import Path

import pytest
import torch

import igkit
from igkit.cli.main import main
from igkit.domain import Domain, Prepared, text_item

WEIGHTS = torch.tensor([2.0, -1.0, 0.5])


class PlainDomain(Domain):
    """Comma-separated numbers, F(x) = x · w; items may be folders of ``.txt`` files (inputs)."""

    name = "plain"

    def load_model(self, source, **settings):
        return WEIGHTS

    def read_items(self, sources, **settings):
        for number, text in enumerate(sources, start=1):
            if Path(text).is_dir():
                for path in sorted(Path(text).glob("*.txt")):
                    yield text_item(str(path), path.read_text().strip())
            else:
                yield text_item(f"argument {number}", text)

    def prepare(self, model, value, **settings):
        x = torch.tensor([[float(v) for v in value.split(",")]])
        return Prepared(name=value, inputs=x, forward=lambda v: v @ model, label="score", group=0)


@pytest.fixture(autouse=True)
def plain_registered():
    module = types.ModuleType("plain_plugin")
    module.igkit_domains = igkit.hookimpl(lambda: [PlainDomain()])
    igkit.register(module, name="plain-ownership-test")
    yield
    igkit.unregister("plain-ownership-test")


def explain(out, *items: str, extra: tuple[str, ...] = ()) -> int:
    return main(["plain", "explain", *(items or ("1,2,3", "3,2,1")), "--out", str(out), "--steps", "2",
                 "--threads", "1", "--quiet", *extra])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "Traceback" not in err and err.count("\n") == 1, err
    return err


def item_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir() and (p / "summary.json").is_file())


def test_overwrite_removes_only_what_igkit_wrote(tmp_path, capsys):
    out = tmp_path / "out"
    assert explain(out) == 0
    mine = out / "my-notes"
    mine.mkdir()
    (mine / "summary.json").write_text('{"mine": true}')  # the user's own, in the same folder
    (out / "notes.txt").write_text("precious")
    assert explain(out, "5,0,0", extra=("--steps", "3", "--overwrite")) == 0
    assert (mine / "summary.json").read_text() == '{"mine": true}' and (out / "notes.txt").is_file()
    assert len(item_folders(out)) == 2  # the new run's item and the user's folder, nothing of the old run
    assert json.loads((out / "report.json").read_text())["counts"]["written"] == 1


@pytest.mark.parametrize("content", ['{"name": "my project"}', "{cut sho", "[]"])
def test_a_run_json_that_is_not_igkits_is_never_replaced(tmp_path, capsys, content):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(content)
    assert explain(out, extra=("--overwrite",)) == 2
    assert "is not an igkit run.json" in error_line(capsys)
    assert (out / "run.json").read_text() == content and sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_a_second_run_into_a_busy_folder_refuses_and_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "out"
    assert explain(out) == 0
    lock = out / ".igkit.lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "since": "now"}))
    assert explain(out) == 2
    assert "is being written by another igkit run" in error_line(capsys)
    assert len(item_folders(out)) == 2  # nothing of the running one was touched
    lock.write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": socket.gethostname(), "since": "then"}))
    assert explain(out) == 0 and not lock.exists()  # the owner is gone: taken over, released at the end


def test_an_item_path_that_is_a_file_is_skipped_with_the_reason_or_replaced_on_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    assert explain(out, "1,2,3") == 0
    [name] = item_folders(out)
    import shutil

    shutil.rmtree(out / name)
    (out / name).write_text("not a folder")
    assert explain(out, "1,2,3", "0,0,1") == 1
    report = json.loads((out / "report.json").read_text())
    [skipped] = [e for e in report["items"] if e["status"] == "skipped"]
    assert "is not a folder" in skipped["reason"] and "--overwrite" in skipped["reason"]
    assert report["counts"]["written"] == 1
    assert explain(out, "1,2,3", "0,0,1", extra=("--overwrite",)) == 0
    assert (out / name / "summary.json").is_file()


def test_outputs_follow_the_umask_and_stale_temporary_files_go(tmp_path):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert explain(out) == 0
    finally:
        os.umask(old)
    for path in (out / "run.json", out / "report.json", *out.glob("*/summary.json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    (out / ".report.json.abc123.tmp").write_text("{half")
    assert explain(out) == 0
    assert not list(out.glob(".*.tmp"))


def test_out_that_names_no_folder_of_its_own_is_refused(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "inputs"
    photos.mkdir()
    (photos / "a.txt").write_text("1,1,1")
    monkeypatch.chdir(tmp_path)
    for out, message in (("", "--out is empty"), (".", "is the current folder"), ("/", "is the root folder"),
                         (str(photos / "results"), "inside the input folder")):
        assert main(["plain", "explain", str(photos), "--out", out, "--steps", "2", "--quiet"]) == 2
        assert message in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]
    assert [p.name for p in photos.iterdir()] == ["a.txt"]


def test_damaged_state_and_full_disks_are_one_clear_error_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert explain(out) == 0
    report = out / "report.json"
    report.unlink()
    report.mkdir()
    assert explain(out) == 2
    assert "report.json is not a file" in error_line(capsys)
    report.rmdir()
    [first, _] = item_folders(out)
    (out / first / "summary.json").write_text("[]")  # damaged: that item is computed again
    from igkit.run import report as run_report

    original = run_report.write_json_rows

    def full_disk(path, *args):
        if Path(path).name == "report.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, *args)

    monkeypatch.setattr(run_report, "write_json_rows", full_disk)
    assert explain(out) == 2
    assert "No space left on device" in error_line(capsys)
    monkeypatch.undo()
    assert explain(out) == 0
    counts = json.loads(report.read_text())["counts"]
    assert counts["kept"] + counts["written"] == 2 and counts["written"] >= 1


def test_a_full_temporary_folder_stops_the_run_with_what_to_do_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    import sqlite3

    from igkit.run import report as run_report

    class FillsUp:
        """A connection whose temporary file is full after the first item's entry."""

        def __init__(self, real):
            self.real, self.entries = real, 0

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO entries"):
                self.entries += 1
                if self.entries > 1:
                    raise sqlite3.OperationalError("database or disk is full")
            return self.real.execute(sql, *args)

        def executescript(self, sql):
            return self.real.executescript(sql)

        def close(self):
            self.real.close()

    connect = sqlite3.connect
    monkeypatch.setattr(run_report.sqlite3, "connect", lambda *a, **k: FillsUp(connect(*a, **k)))
    out = tmp_path / "out"
    assert explain(out, "1,2,3", "4,5,6", "7,8,9") == 2
    line = error_line(capsys)
    assert "database or disk is full" in line and "TMPDIR" in line and "rerun the same command" in line
    assert json.loads((out / "report.json").read_text())["status"] == "failed"
    monkeypatch.undo()
    assert explain(out, "1,2,3", "4,5,6", "7,8,9") == 0
    counts = json.loads((out / "report.json").read_text())["counts"]
    assert counts["kept"] >= 1 and counts["kept"] + counts["written"] == 3
