"""The run contract, held by every engine: the same tests run on the local engine, a process
pool and Ray.

A linear domain (known answers: attribution = x · w) goes through the one driver with
each engine: resume, interrupt and resume, folder-name collisions, stale inputs,
``--overwrite``, odd ``--out`` folders, bad items, ``--no-pictures``, input order and
the Parquet tables. Ray runs on one local Ray of 2 CPUs shared by the whole module
(skipped without ``igkit[ray]``).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

import igkit
from igkit.domain import Domain, Item, Prepared, content_digest
from igkit.run.engines import get_engine
from igkit.errors import Interrupted, OutputError
from igkit.run.run_folder import run_to_folder
from igkit.run.runner import RunOptions

WEIGHTS = torch.tensor([2.0, -1.0, 0.5])
HAVE_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None


class LinearDomain(Domain):
    """Items are comma-separated numbers or ``.txt`` files holding them; F(x) = x · w."""

    name = "linear"
    description = "numbers scored by a fixed linear model"
    max_group = 2

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on

    def load_model(self, source, **settings):
        return WEIGHTS

    def read_items(self, sources, **settings):
        for number, text in enumerate(sources, start=1):
            path = Path(text)
            if path.suffix == ".txt":
                content = path.read_text().strip()
                yield Item(source=text, value=content, name=path.stem, digest=content_digest(content))
            else:
                yield Item(source=f"argument {number}", value=text, name=text, digest=content_digest(text))

    def prepare(self, model, value, scale: float = 1.0, **settings):
        try:
            values = [float(v) * scale for v in value.split(",")]
        except ValueError:
            raise igkit.IGInputError(f"{value!r} is not comma-separated numbers") from None
        bad = None if self.fail_on is None else torch.tensor([float(v) for v in self.fail_on.split(",")])

        def forward(v):  # shared by the whole group: fails on the bad item's own row
            if bad is not None and bool((v == bad).all(1).any()):
                raise RuntimeError("a bug in the model code")
            return v @ model
        return Prepared(name=value, inputs=torch.tensor([values]), forward=forward, label="score", group=0)

    def write_item(self, explanation, folder, *, pictures=True):
        values = explanation.result.attributions[0].tolist()
        (folder / "attributions.txt").write_text(" ".join(f"{v:.4f}" for v in values))
        if pictures:
            (folder / "picture.txt").write_text("a picture")
        return ["attributions.txt"] + (["picture.txt"] if pictures else [])

    def write_run(self, out_dir, folders, *, pictures=True):
        rows = [[f.name, (f / "attributions.txt").read_text()] for f in folders]
        igkit.write_csv(out_dir / "all.csv", ["folder", "attributions"], rows)
        return ["all.csv"]


class SlowLinear(LinearDomain):
    """0.05 s per item and one item per group (Ray windows of 4), so a run can be stopped half way."""

    max_group = 1

    def prepare(self, model, value, **settings):
        import time

        time.sleep(0.05)
        return super().prepare(model, value, **settings)


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) for every Ray run of this module; this module travels by value."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install 'igkit[ray]')")
    import ray
    import ray.cloudpickle

    from igkit.run.engines.ray import connect

    started = connect(num_cpus=2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module", autouse=True)
def no_process_left():
    """The process engine keeps its pool for later runs: stop it when this module is done."""
    yield
    from igkit.run.engines.process import shutdown

    shutdown()


@pytest.fixture(params=["local", "process", "ray"])
def engine(request):
    """The name of the engine under test (Ray: its session is started once per module)."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    return request.param


def run(engine: str, domain: Domain, items, out: Path, **kw):
    options = kw.pop("options", RunOptions(igkit.Integration(steps=4)))
    settings = kw.pop("settings", {})
    chosen = get_engine(engine) if engine == "local" else get_engine(engine, workers=2, threads=1)
    return run_to_folder(domain, WEIGHTS, domain.read_items(items), out, settings=settings, options=options,
                         show_progress=False, engine=chosen, **kw)


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def attributions_in(out: Path, source: str) -> list[float]:
    [entry] = [e for e in report_of(out)["items"] if e["source"] == source]
    return [float(v) for v in (out / entry["folder"] / "attributions.txt").read_text().split()]


def item_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and (p / "summary.json").is_file())


def numbers(n: int) -> list[str]:
    return [f"{k},1,{k % 3}" for k in range(n)]


def expected(item: str) -> list[float]:
    return [float(v) * float(w) for v, w in zip(item.split(","), WEIGHTS)]


def test_a_finished_run_resumes_without_computing_anything(engine, tmp_path):
    items = numbers(5)
    first = run(engine, LinearDomain(), items, tmp_path)
    assert first.count("written") == 5
    again = run(engine, LinearDomain(), items, tmp_path)
    assert again.count("kept") == 5 and again.count("written") == 0
    if engine == "ray":  # nothing to compute: no worker was even started
        assert report_of(tmp_path)["engine"]["workers_used"] == 0
    assert [e["source"] for e in report_of(tmp_path)["items"]] == [f"argument {k}" for k in range(1, 6)]


class CountingTables(LinearDomain):
    """Counts how often the run tables are written."""

    tables_written = 0

    def write_run(self, out_dir, folders, *, pictures=True):
        CountingTables.tables_written += 1
        return super().write_run(out_dir, folders, pictures=pictures)


def test_a_resume_that_changes_nothing_keeps_the_run_tables_and_any_change_rewrites_them(tmp_path):
    CountingTables.tables_written = 0
    run("local", CountingTables(), numbers(3), tmp_path)
    first = (tmp_path / "all.csv").read_text()
    run("local", CountingTables(), numbers(3), tmp_path)
    assert CountingTables.tables_written == 1 and (tmp_path / "all.csv").read_text() == first
    run("local", CountingTables(), list(reversed(numbers(3))), tmp_path)  # another order: other tables
    assert CountingTables.tables_written == 2
    assert (tmp_path / "all.csv").read_text().splitlines()[1:] == list(reversed(first.splitlines()[1:]))
    (tmp_path / "all.csv").unlink()  # a table the user removed is written again
    run("local", CountingTables(), list(reversed(numbers(3))), tmp_path)
    assert CountingTables.tables_written == 3 and (tmp_path / "all.csv").is_file()
    run("local", CountingTables(), numbers(4), tmp_path)  # one more item
    assert CountingTables.tables_written == 4 and (tmp_path / "all.csv").read_text().count("\n") == 5


def test_an_interrupt_counts_what_is_on_disk_and_the_rerun_does_only_the_rest(engine, tmp_path, monkeypatch):
    from igkit.run import run_folder

    items, seen = numbers(24), []
    original = run_folder._Driver.record

    def record_then_interrupt(self, entry):
        original(self, entry)
        seen.append(entry)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third item came back

    monkeypatch.setattr(run_folder._Driver, "record", record_then_interrupt)
    with pytest.raises(Interrupted, match="run the same command again to resume"):
        run(engine, SlowLinear(), items, tmp_path)
    monkeypatch.undo()
    report = report_of(tmp_path)
    on_disk = item_folders(tmp_path)
    assert report["status"] == "interrupted" and 3 <= report["counts"]["written"] < 24
    assert {e["folder"] for e in report["items"] if e["status"] == "written"} <= {p.name for p in on_disk}
    if engine == "local":
        assert report["counts"]["written"] == len(on_disk)
    assert not list(tmp_path.glob(".partial-*"))
    final = run(engine, SlowLinear(), items, tmp_path)
    kept = final.count("kept")
    assert kept >= len(on_disk) and kept + final.count("written") == 24
    assert len(item_folders(tmp_path)) == 24
    assert [attributions_in(tmp_path, f"argument {k + 1}") for k in range(24)] == [expected(i) for i in items]


class SlowWriter(SlowLinear):
    """An item's folder takes 0.5 s to write, so when one item comes back another worker is writing."""

    def write_item(self, explanation, folder, *, pictures=True):
        import time

        files = super().write_item(explanation, folder, pictures=pictures)
        time.sleep(0.5)
        return files


def test_an_interrupt_while_a_worker_writes_leaves_no_half_written_folder(engine, tmp_path, monkeypatch):
    from igkit.run import run_folder

    original, seen = run_folder._Driver.record, []

    def record_then_interrupt(self, entry):
        original(self, entry)
        seen.append(entry)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C as the third item comes back: another worker is mid-write

    monkeypatch.setattr(run_folder._Driver, "record", record_then_interrupt)
    with pytest.raises(Interrupted):
        run(engine, SlowWriter(), numbers(12), tmp_path)
    monkeypatch.undo()
    assert not list(tmp_path.glob(".partial-*"))
    assert report_of(tmp_path)["status"] == "interrupted"


def test_names_that_clean_alike_get_their_own_folders_and_identical_items_share_one(engine, tmp_path):
    items = ["1,2,3", "1, 2,3", "2,0,0", "1,2,3"]  # the first two clean to the same readable name
    report = run(engine, LinearDomain(), items, tmp_path).as_dict()
    by_source = {e["source"]: e for e in report["items"]}
    assert by_source["argument 1"]["folder"] != by_source["argument 2"]["folder"]
    assert by_source["argument 4"]["status"] == "duplicate"
    assert by_source["argument 4"]["folder"] == by_source["argument 1"]["folder"]
    assert report["counts"] == {"written": 3, "kept": 0, "duplicate": 1, "skipped": 0}
    assert [e["source"] for e in report["items"]] == [f"argument {k}" for k in range(1, 5)]
    assert attributions_in(tmp_path, "argument 2") == [2.0, -2.0, 1.5]
    from igkit.run.run_layout import folder_name

    assert all(folder_name(Item("s", "v", n, "ab" * 32)).isascii() for n in ("é", "名前", "a/b"))


def test_a_replaced_input_file_is_recomputed_not_served_stale(engine, tmp_path):
    data, out = tmp_path / "x.txt", tmp_path / "out"
    data.write_text("1,0,0")
    run(engine, LinearDomain(), [str(data)], out)
    data.write_text("0,0,2")
    second = run(engine, LinearDomain(), [str(data)], out)
    assert second.count("written") == 1 and second.count("kept") == 0
    assert attributions_in(out, str(data)) == [0.0, 0.0, 1.0]


def test_other_settings_are_refused_and_overwrite_replaces_the_whole_run(engine, tmp_path):
    run(engine, LinearDomain(), ["1,2,3", "3,2,1"], tmp_path)
    other = RunOptions(igkit.Integration(steps=8))
    with pytest.raises(OutputError, match="other integration.*--overwrite"):
        run(engine, LinearDomain(), ["1,2,3"], tmp_path, options=other)
    with pytest.raises(OutputError, match="other settings"):
        run(engine, LinearDomain(), ["1,2,3"], tmp_path, settings={"scale": 2.0})
    replaced = run(engine, LinearDomain(), ["5,0,0"], tmp_path, options=other, overwrite=True)
    assert replaced.count("written") == 1
    assert [p.name for p in item_folders(tmp_path)] == [replaced.entries[0]["folder"]]
    assert (tmp_path / "all.csv").read_text().count("\n") == 2


def test_odd_out_folders_are_refused_before_anything_is_written(engine, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run(engine, LinearDomain(), ["1,2,3"], a_file)
    with pytest.raises(OutputError, match="cannot write to --out"):
        run(engine, LinearDomain(), ["1,2,3"], a_file / "sub")
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not empty and holds no igkit run"):
        run(engine, LinearDomain(), ["1,2,3"], foreign, overwrite=True)
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


def test_bad_items_are_skipped_with_the_reason_and_the_others_are_intact(engine, tmp_path, capsys):
    items = ["1,0,0", "oops", "0,1,0", "0,0,1"]
    report = run(engine, LinearDomain(fail_on="0,1,0"), items, tmp_path)
    skipped = {e["source"]: e for e in report.skipped}
    assert skipped["argument 2"]["kind"] == "input" and "not comma-separated" in skipped["argument 2"]["reason"]
    assert skipped["argument 3"]["kind"] == "internal"
    assert "a bug in the model code" in skipped["argument 3"]["traceback"]
    assert attributions_in(tmp_path, "argument 1") == [2.0, 0.0, 0.0]
    assert attributions_in(tmp_path, "argument 4") == [0.0, 0.0, 0.5]
    assert report.exit_code == 1
    assert "skipped argument 2: 'oops' is not comma-separated numbers" in capsys.readouterr().err


def test_no_pictures_still_writes_item_folders_and_run_tables(engine, tmp_path):
    report = run(engine, LinearDomain(), numbers(3), tmp_path, pictures=False)
    folders = item_folders(tmp_path)
    assert len(folders) == 3 and report.run_files == ["all.csv"]
    assert all(sorted(p.name for p in f.iterdir()) == ["attributions.txt", "summary.json"] for f in folders)


def test_parquet_tables_hold_every_item_and_unit_in_input_order(engine, tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    items = ["3,1,2", "oops", "1,1,1", "3,1,2", "0,2,0"]
    run(engine, LinearDomain(), items, tmp_path, output_format="parquet")
    rows = pandas.read_parquet(tmp_path / "items")
    assert rows["source"].tolist() == [f"argument {k}" for k in range(1, 6)]
    assert rows["status"].tolist() == ["written", "skipped", "written", "duplicate", "written"]
    bad = rows.iloc[1]
    assert bad["kind"] == "input" and "not comma-separated" in bad["reason"]
    assert all(pandas.isna(bad[c]) for c in ("prediction", "item", "converged", "folder", "steps"))
    assert pandas.isna(rows["reason"].iloc[0])  # nulls are nulls, not the text "None"
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "items")
    assert table.column("reason").null_count == 4 and table.column("prediction").null_count == 1
    good = rows.iloc[0]
    assert good["prediction"] == pytest.approx(6.0 - 1.0 + 1.0) and good["baseline_prediction"] == 0.0
    assert good["attribution_sum"] == pytest.approx(6.0) and good["completeness_error"] < 1e-6
    units = pandas.read_parquet(tmp_path / "units")
    assert units["item"].tolist() == ["3,1,2"] * 3 + ["1,1,1"] * 3 + ["0,2,0"] * 3
    assert units["unit"].tolist() == [0, 1, 2] * 3
    values = [v for item in ("3,1,2", "1,1,1", "0,2,0") for v in expected(item)]
    assert units["attribution"].tolist() == pytest.approx(values)

    assert pq.read_schema(tmp_path / "units" / "part-0.parquet").metadata[b"igkit_schema_version"] == b"1"


def test_sigterm_ends_a_run_like_ctrl_c(tmp_path, monkeypatch):
    import os
    import signal

    from igkit.run import run_folder

    original, seen = run_folder._Driver.record, []

    def record_then_terminate(self, entry):
        original(self, entry)
        seen.append(entry)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a batch system would

    monkeypatch.setattr(run_folder._Driver, "record", record_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted):
        run("local", SlowLinear(), numbers(6), tmp_path)
    report = report_of(tmp_path)
    assert report["status"] == "interrupted" and report["counts"]["written"] == len(item_folders(tmp_path))
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the caller's again


def test_report_json_is_the_report_with_one_entry_a_line(tmp_path):
    report = run("local", LinearDomain(), ["1,2,3", "not numbers", "1,2,3"], tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert json.loads(text) == report.as_dict()
    assert report.counts() == {"written": 1, "kept": 0, "duplicate": 1, "skipped": 1}
    lines = [line.strip().rstrip(",") for line in text.splitlines() if line.strip().startswith('{"source"')]
    assert [json.loads(line)["source"] for line in lines] == ["argument 1", "argument 2", "argument 3"]


def test_a_repeat_of_a_bad_item_is_skipped_with_its_first_copys_reason(tmp_path):
    report = run("local", LinearDomain(), ["not numbers", "1,0,0", "not numbers"], tmp_path)
    skipped = {e["source"]: e for e in report.skipped}
    assert list(skipped) == ["argument 1", "argument 3"] and report.counts()["written"] == 1
    assert skipped["argument 3"]["reason"].startswith("same content as argument 1: ")
    assert "is not comma-separated numbers" in skipped["argument 3"]["reason"]
