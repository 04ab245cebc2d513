"""``--engine ray``: the runner's work on Ray Data workers, checked against the local engine.

One local Ray (2 CPUs) serves the whole file. The toy domain of tests/thirdparty runs
everywhere; the molecules and text tests run where those domains are installed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import igkit
from igkit.cli import main

THIRD_PARTY = Path(__file__).parent / "thirdparty"


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


HAVE_RAY = _installed("ray") and _installed("pyarrow")
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'igkit[ray]')")


def _toy_module():
    """The toy plugin under its own module name (Ray workers import it by that name from
    PYTHONPATH), without putting its folder, and so its entry point, on this process's path."""
    if "toy_igkit_plugin" not in sys.modules:
        spec = importlib.util.spec_from_file_location("toy_igkit_plugin", THIRD_PARTY / "toy_igkit_plugin.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["toy_igkit_plugin"] = module
        spec.loader.exec_module(module)
    return sys.modules["toy_igkit_plugin"]


toy_igkit_plugin = _toy_module()


# ------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_domain():
    """The toy plugin's ``numbers`` domain, registered for this module only."""
    registered = "numbers" not in igkit.domains()
    if registered:
        igkit.register(toy_igkit_plugin, name="toy-ray-tests")
    yield
    if registered:
        igkit.unregister("toy-ray-tests")


@pytest.fixture(scope="module")
def ray_cluster(toy_domain):
    """A local Ray with 2 CPUs whose workers can import the toy plugin; this module's test
    domains travel by value."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install 'igkit[ray]')")
    import ray
    import ray.cloudpickle

    from igkit.ray_engine import connect

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(THIRD_PARTY), before) if p)
    started = connect(num_cpus=2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    if started:
        ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


class SmallWindows(toy_igkit_plugin.NumbersDomain):
    """The toy domain with windows of 4 items (``max_group`` 1), so a few items make several tasks."""

    max_group = 1


class SlowWindows(SmallWindows):
    """Windows that take a while (0.1 s per item), so a run can be interrupted half way."""

    name = "slownumbers"

    def prepare(self, model, item, **settings):
        import time

        time.sleep(0.1)
        return super().prepare(model, item, **settings)


class KillsWorker(SmallWindows):
    """Kills its worker process (as a segfault or an out-of-memory kill would) on ``victim``:
    once if ``marker`` is a file it removes first, every time if ``marker`` is None."""

    def __init__(self, victim: str, marker: str | None) -> None:
        self.victim, self.marker = victim, marker

    def prepare(self, model, item, **settings):
        if item == self.victim and (self.marker is None or os.path.exists(self.marker)):
            if self.marker is not None:
                os.unlink(self.marker)
            os._exit(1)
        return super().prepare(model, item, **settings)


def _items(n: int) -> list[str]:
    return [f"{k},{k % 3 - 1},{0.5 * k}" for k in range(1, n + 1)]


def _cli(*args: str) -> int:
    return main([*args, "--threads", "1", "--quiet"])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _rows(out: Path):
    import pyarrow.parquet as pq

    return pq.read_table(out / "attributions").to_pylist()


def _attributions(row: dict) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float32).reshape(s) for a, s in zip(row["attributions"], row["shapes"])]


def _ray_run(domain, items, out, **kw):
    from igkit.api import default_settings, run_options
    from igkit.ray_engine import run_to_folder_ray

    options = run_options(domain, **kw.pop("integration", {"steps": 8}))
    return run_to_folder_ray(domain, domain.read_items(items), out, settings=default_settings(domain),
                             options=options, show_progress=False, **kw)


# ------------------------------------------------------------------------------------------
# the CLI: same files, same results as the local engine
# ------------------------------------------------------------------------------------------
def test_without_ray_the_engine_says_how_to_install_it(toy_domain, tmp_path, monkeypatch, capsys):
    for name in ("ray", "ray.data", "pyarrow"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    code = _cli("numbers", "explain", "1,2,3", "--out", str(tmp_path / "out"), "--engine", "ray")
    assert code == 2
    assert capsys.readouterr().err.strip() == "igkit: error: --engine ray needs Ray: pip install 'igkit[ray]'"
    assert not (tmp_path / "out").exists()


@needs_ray
def test_ray_engine_writes_what_the_local_engine_writes(ray_cluster, tmp_path, capsys):
    items = [*_items(5), "oops", _items(1)[0], "1,2"]
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert _cli("numbers", "explain", *items, "--out", str(local)) == 1
    assert _cli("numbers", "explain", *items, "--out", str(remote), "--engine", "ray", "--workers", "2") == 1
    assert "skipped argument 6: 'oops' is not a list of comma-separated numbers" in capsys.readouterr().err
    a, b = _report(local), _report(remote)
    assert b["run_id"] == a["run_id"] and b["counts"] == a["counts"] == {
        "written": 5, "kept": 0, "duplicate": 1, "skipped": 2}
    strip = [{k: v for k, v in e.items() if k != "part"} for e in b["items"]]
    assert strip == a["items"]  # same sources, order, folders, skip kinds and reasons
    assert b["engine"]["name"] == "ray" and b["engine"]["workers"] == 2
    rows = {r["digest"]: r for r in _rows(remote)}
    assert len(rows) == 5 and all(r["run_id"] == a["run_id"] for r in rows.values())
    for entry in (e for e in a["items"] if e["status"] == "written"):
        expected = igkit.IGResult.load(local / entry["folder"] / "result.npz")
        got = igkit.IGResult.load(remote / entry["folder"] / "result.npz")
        torch.testing.assert_close(got.attributions, expected.attributions, rtol=1e-6, atol=1e-7)
        row = rows[entry["digest"]]
        np.testing.assert_allclose(_attributions(row)[0], expected.attributions[0].numpy(), rtol=1e-6,
                                   atol=1e-7)
        assert row["folder"] == entry["folder"] and row["source"] == entry["source"]
        summary_local = json.loads((local / entry["folder"] / "summary.json").read_text())
        summary_ray = json.loads((remote / entry["folder"] / "summary.json").read_text())
        assert {k: v for k, v in summary_ray.items() if k != "seconds"} == {
            k: v for k, v in summary_local.items() if k != "seconds"}
        assert json.loads(row["summary"]) == summary_ray
        assert row["completeness_error"] == summary_ray["completeness_error"]
        bars = [(out / entry["folder"] / "bars.txt").read_text() for out in (local, remote)]
        assert bars[0] == bars[1]


@needs_ray
def test_no_pictures_writes_only_the_parquet_rows_and_shows_progress(ray_cluster, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["numbers", "explain", *_items(3), "--out", str(out), "--engine", "ray", "--no-pictures",
                 "--steps", "4", "--methods", "grad_x_input", "--threads", "1"]) == 0
    progress = capsys.readouterr().err.split("\r")[-1]
    assert "explain numbers (ray, 2 workers)" in progress and " 3/3 " in progress and "items/s" in progress
    engine = _report(out)["engine"]
    assert engine["items_per_second"] > 0 and engine["worker_peak_rss_mib"] > 50
    assert sorted(p.name for p in out.iterdir()) == ["attributions", "report.json", "run.json"]
    rows = _rows(out)
    assert sorted(r["source"] for r in rows) == ["argument 1", "argument 2", "argument 3"]
    row = next(r for r in rows if r["source"] == "argument 2")
    x = np.array([float(v) for v in _items(3)[1].split(",")], dtype=np.float32)
    np.testing.assert_allclose(_attributions(row)[0], x * toy_igkit_plugin.WEIGHTS.numpy(), rtol=1e-6)
    assert row["shapes"] == [[3]] and row["steps"] == 4 and row["status"] == "written"
    assert row["folder"] is None and json.loads(row["summary"])["files"] == []
    assert row["methods"] == ["grad_x_input"]  # gradient × input of a linear model: x·w as well
    np.testing.assert_allclose(row["method_attributions"][0], x * toy_igkit_plugin.WEIGHTS.numpy(), rtol=1e-6)


@needs_ray
def test_other_settings_are_refused_and_overwrite_replaces_the_rows(ray_cluster, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["numbers", "explain", *_items(2), "--out", str(out), "--engine", "ray", "--no-pictures"]
    assert _cli(*base, "--steps", "4") == 0
    first = _report(out)["run_id"]
    assert _cli(*base, "--steps", "6") == 2
    assert "holds a run with other integration" in capsys.readouterr().err
    assert _cli(*base, "--steps", "6", "--overwrite") == 0
    parts = sorted((out / "attributions").iterdir())
    assert parts and all(first not in p.name for p in parts)
    assert {r["steps"] for r in _rows(out)} == {6} and len(_rows(out)) == 2


# ------------------------------------------------------------------------------------------
# resume, lost workers, items that keep killing their worker
# ------------------------------------------------------------------------------------------
@needs_ray
def test_an_interrupted_run_resumes_and_computes_only_the_rest(ray_cluster, tmp_path, monkeypatch, capsys):
    import igkit.ray_engine as engine

    class InterruptAfterFirstWindow(engine.Progress):
        def advance(self, count=1, postfix=None):
            super().advance(count, postfix)
            raise KeyboardInterrupt  # Ctrl-C once the first window is in

    class SlowPlugin:
        @igkit.hookimpl
        def igkit_domains(self):
            return [SlowWindows()]

    items, out = _items(12), tmp_path / "out"
    command = ["slownumbers", "explain", *items, "--out", str(out), "--engine", "ray", "--steps", "8",
               "--no-pictures", "--threads", "1"]
    igkit.register(SlowPlugin(), name="ray-tests-slow")
    try:
        monkeypatch.setattr(engine, "Progress", InterruptAfterFirstWindow)
        assert main([*command, "--workers", "1"]) == 130
        assert "run the same command again to resume" in capsys.readouterr().err
        report = _report(out)
        assert report["status"] == "interrupted"
        time.sleep(2)  # the pipeline was stopped: no window finishes after the interrupt
        first = {r["digest"] for r in _rows(out)}
        assert 4 <= len(first) < 12  # at least the first window (4 items), not all
        assert {e["digest"] for e in report["items"] if e["status"] == "written"} <= first
        monkeypatch.undo()
        assert main([*command, "--workers", "2", "--quiet"]) == 0
    finally:
        igkit.unregister("ray-tests-slow")
    again = _report(out)
    assert again["status"] == "complete" and again["counts"]["kept"] == len(first)
    assert again["counts"]["written"] == 12 - len(first)
    digests = [r["digest"] for r in _rows(out)]
    assert len(digests) == len(set(digests)) == 12  # every item once


@needs_ray
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(ray_cluster, tmp_path):
    items, marker = _items(12), tmp_path / "kill-once"
    marker.write_text("")
    report = _ray_run(KillsWorker(items[5], str(marker)), items, tmp_path / "out", workers=2)
    assert not marker.exists()  # the worker did die on the marked item
    assert report.status == "complete" and report.count("written") == 12 and not report.skipped
    rows = _rows(tmp_path / "out")
    assert sorted(r["source"] for r in rows) == sorted(f"argument {k}" for k in range(1, 13))
    for row in rows:
        x = np.array([float(v) for v in items[int(row["source"].split()[1]) - 1].split(",")], np.float32)
        np.testing.assert_allclose(_attributions(row)[0], x * toy_igkit_plugin.WEIGHTS.numpy(), rtol=1e-6)


@needs_ray
def test_an_item_that_keeps_killing_its_worker_is_skipped_with_the_reason(ray_cluster, tmp_path, capsys):
    items = _items(6)
    report = _ray_run(KillsWorker(items[2], None), items, tmp_path / "out", workers=1)
    assert report.status == "complete"
    assert [(e["source"], e["kind"]) for e in report.skipped] == [("argument 3", "internal")]
    assert "worker process died 2 times while computing this item" in report.skipped[0]["reason"]
    assert "skipped argument 3: the worker process died" in capsys.readouterr().err
    digests = [r["digest"] for r in _rows(tmp_path / "out")]
    assert len(digests) == len(set(digests)) == 5


class NoModelOnWorkers(SmallWindows):
    """Loads its model in the driver's process only, like a model file missing on the cluster's nodes."""

    def __init__(self) -> None:
        self.driver = os.getpid()

    def load_model(self, source, **settings):
        if os.getpid() != self.driver:
            raise igkit.ModelError("model file /models/x.safetensors not found")
        return super().load_model(source, **settings)


@needs_ray
def test_a_worker_that_cannot_load_the_model_stops_the_run_with_the_reason(ray_cluster, tmp_path):
    with pytest.raises(igkit.ModelError, match="^model file /models/x.safetensors not found$"):
        _ray_run(NoModelOnWorkers(), _items(2), tmp_path / "out", workers=1)
    assert _report(tmp_path / "out")["status"] == "failed"


class MissingOnWorkers(SmallWindows):
    """A domain whose plugin is not installed on the workers (it cannot be unpickled there)."""

    def __init__(self) -> None:
        self.state = "only here"

    def __setstate__(self, state):
        raise ModuleNotFoundError("No module named 'plugin_only_on_the_driver'")


@needs_ray
def test_a_plugin_missing_on_the_workers_is_one_clear_error(ray_cluster, tmp_path):
    with pytest.raises(igkit.IgkitError, match="the Ray run stopped: .*No module named "
                                               "'plugin_only_on_the_driver'.*same igkit and plugins"):
        _ray_run(MissingOnWorkers(), _items(2), tmp_path / "out", workers=1)


# ------------------------------------------------------------------------------------------
# the Python entry point for Ray users
# ------------------------------------------------------------------------------------------
@needs_ray
def test_attribute_dataset_adds_the_attribution_columns(ray_cluster):
    import ray.data

    from igkit.ray_engine import attribute_dataset

    values = ["1,2,3", "oops", "4,5,6", "1,2,3"]
    ds = ray.data.from_items([{"id": k, "smiles": v} for k, v in enumerate(values)])
    rows = sorted(attribute_dataset(ds, "numbers", column="smiles", integration={"steps": 8},
                                    workers=1).take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [0, 1, 2, 3] and [r["smiles"] for r in rows] == values
    assert [r["status"] for r in rows] == ["written", "skipped", "written", "written"]
    assert rows[1]["kind"] == "input" and "not a list of comma-separated numbers" in rows[1]["reason"]
    expected = igkit.explain("numbers", ["1,2,3", "4,5,6"], integration={"steps": 8})
    for row, explanation in zip([rows[0], rows[2]], expected):
        np.testing.assert_allclose(_attributions(row)[0], explanation.result.attributions[0].numpy(),
                                   rtol=1e-6)
        assert row["steps"] == 8 and row["source"] in ("1,2,3", "4,5,6")
    np.testing.assert_array_equal(_attributions(rows[3])[0], _attributions(rows[0])[0])


@needs_ray
def test_attribute_dataset_names_a_missing_column(ray_cluster):
    import ray.data

    from igkit.ray_engine import attribute_dataset

    with pytest.raises(igkit.IGInputError, match="no column 'item'; its columns are smiles"):
        attribute_dataset(ray.data.from_items([{"smiles": "1,2,3"}]), "numbers")


# ------------------------------------------------------------------------------------------
# the real domains, where installed
# ------------------------------------------------------------------------------------------
def _domain_or_skip(name: str):
    if name not in igkit.domains():
        pytest.skip(f"the {name} domain is not loaded (see `igkit plugins`)")


@needs_ray
@pytest.mark.parametrize("domain, items", [
    ("molecules", ["c1ccccc1O", "CCO", "not a smiles", "c1ccccc1C(=O)O", "CCN"]),
    ("text", ["the cat sat on the mat", "a b c", "the market fell"]),
])
def test_real_domains_equal_the_local_engine(ray_cluster, tmp_path, domain, items):
    _domain_or_skip(domain)
    local, remote = tmp_path / "local", tmp_path / "ray"
    code_local = _cli(domain, "explain", *items, "--out", str(local), "--no-pictures")
    code_ray = _cli(domain, "explain", *items, "--out", str(remote), "--no-pictures", "--engine", "ray")
    assert code_ray == code_local
    a, b = _report(local), _report(remote)
    assert b["counts"] == a["counts"] and b["counts"]["written"] >= 1
    assert [(e["source"], e["status"], e.get("reason")) for e in b["items"]] == [
        (e["source"], e["status"], e.get("reason")) for e in a["items"]]
    rows = {r["digest"]: r for r in _rows(remote)}
    expected = {e.attribution.item.digest: e.attribution for e in igkit.explain(domain, items)}
    assert set(rows) == set(expected) == {e["digest"] for e in a["items"] if e["status"] == "written"}
    for digest, attribution in expected.items():
        got = _attributions(rows[digest])
        assert len(got) == len(attribution.result.attribution_tuple)
        for g, e in zip(got, attribution.result.attribution_tuple):
            np.testing.assert_allclose(g, e[0].numpy(), rtol=1e-5, atol=1e-6)
        assert rows[digest]["steps"] == attribution.summary["steps"]
        assert rows[digest]["completeness_error"] == pytest.approx(attribution.summary["completeness_error"],
                                                                  rel=1e-4, abs=1e-7)
