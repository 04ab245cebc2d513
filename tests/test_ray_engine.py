"""``--engine ray`` beyond the shared run contract (tests/test_engines_contract.py): lost
workers, workers that cannot load the model, options that cannot work, spreading small
runs, and the real domains against the local engine.

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

import pytest

import igkit
from igkit.cli.main import main

THIRD_PARTY = Path(__file__).parent / "thirdparty"
HAVE_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None


def _toy_module():
    """The toy plugin under its own module name, without putting its folder (and so its entry
    point) on this process's path; Ray workers get it by value."""
    if "toy_igkit_plugin" not in sys.modules:
        spec = importlib.util.spec_from_file_location("toy_igkit_plugin", THIRD_PARTY / "toy_igkit_plugin.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["toy_igkit_plugin"] = module
        spec.loader.exec_module(module)
    return sys.modules["toy_igkit_plugin"]


toy_igkit_plugin = _toy_module()


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
def ray_session(toy_domain):
    """A local Ray with 2 CPUs; this module and the toy plugin travel to the workers by value."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install 'igkit[ray]')")
    import ray
    import ray.cloudpickle

    from igkit.run.engines.ray import connect

    started = connect(num_cpus=2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(toy_igkit_plugin)
    yield ray
    if started:
        ray.shutdown()


class SmallWindows(toy_igkit_plugin.NumbersDomain):
    """The toy domain with windows of 4 items (``max_group`` 1), so a few items make several windows."""

    max_group = 1


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


class NoModelOnWorkers(SmallWindows):
    """Loads its model in the driver's process only, like a model file missing on the cluster's nodes."""

    def __init__(self) -> None:
        self.driver = os.getpid()

    def load_model(self, source, **settings):
        if os.getpid() != self.driver:
            raise igkit.ModelError("model file /models/x.safetensors not found")
        return super().load_model(source, **settings)


class MissingOnWorkers(SmallWindows):
    """A domain whose plugin is not installed on the workers (it cannot be unpickled there)."""

    def __init__(self) -> None:
        self.state = "only here"

    def __setstate__(self, state):
        raise ModuleNotFoundError("No module named 'plugin_only_on_the_driver'")


def _items(n: int) -> list[str]:
    return [f"{k},{k % 3 - 1},{0.5 * k}" for k in range(1, n + 1)]


def _cli(*args: str) -> int:
    return main([*args, "--threads", "1", "--quiet"])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _ray_run(domain, items, out, workers=2):
    from igkit.api import default_settings, run_options
    from igkit.run.engines import get_engine
    from igkit.run.run_folder import run_to_folder

    return run_to_folder(domain, domain.load_model(None), domain.read_items(items), out,
                         settings=default_settings(domain), options=run_options(domain, steps=8),
                         show_progress=False, engine=get_engine("ray", workers=workers, threads=1))


def _bars(out: Path) -> dict[str, list[float]]:
    """Each written item's attributions (the toy domain's bars.txt), by source."""
    return {e["source"]: [float(v) for v in (out / e["folder"] / "bars.txt").read_text().split()]
            for e in _report(out)["items"] if e.get("folder")}


def _expected(item: str) -> list[float]:
    return [float(v) * float(w) for v, w in zip(item.split(","), toy_igkit_plugin.WEIGHTS)]


# ------------------------------------------------------------------------------------------
# options that cannot work: a sentence in seconds, exit 2, nothing written
# ------------------------------------------------------------------------------------------
def test_without_ray_the_engine_says_how_to_install_it(toy_domain, tmp_path, monkeypatch, capsys):
    for name in ("ray", "pyarrow"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    code = _cli("numbers", "explain", "1,2,3", "--out", str(tmp_path / "out"), "--engine", "ray")
    assert code == 2
    assert capsys.readouterr().err.strip() == "igkit: error: --engine ray needs Ray: pip install 'igkit[ray]'"
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'igkit[ray]')")
@pytest.mark.parametrize("option, message", [
    (["--ray-address", "no-such-head.invalid:6379"], "'no-such-head.invalid' does not resolve"),
    (["--ray-address", "127.0.0.1:9"], "nothing answers at 127.0.0.1:9"),
    (["--ray-address", "just-a-name"], "give the head node as HOST:PORT"),
    (["--gpus-per-worker", "1"], "no GPU Ray can use"),
])
def test_unusable_ray_options_fail_in_seconds_before_anything_is_written(toy_domain, tmp_path, capsys,
                                                                         option, message):
    if option[0] == "--gpus-per-worker":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    start = time.perf_counter()
    assert _cli("numbers", "explain", "1,2,3", "--out", str(tmp_path / "out"), "--engine", "ray", *option) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'igkit[ray]')")
def test_a_cluster_without_gpus_refuses_gpu_workers(ray_session):
    from igkit.run.engines.ray import check_gpus

    if ray_session.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray has GPUs")
    with pytest.raises(igkit.IGInputError, match="the Ray cluster has 0 GPU.*leave the option out"):
        check_gpus(ray_session, 1)


# ------------------------------------------------------------------------------------------
# work spread, lost workers, items that keep killing their worker
# ------------------------------------------------------------------------------------------
def test_a_small_run_is_spread_over_every_worker(ray_session, tmp_path):
    items = _items(6)  # one window of the toy domain holds 128: split over both idle workers
    report = _ray_run(toy_igkit_plugin.NumbersDomain(), items, tmp_path / "out", workers=2)
    assert report.count("written") == 6 and report.engine["workers_used"] == 2
    assert _bars(tmp_path / "out") == {f"argument {k + 1}": _expected(i) for k, i in enumerate(items)}


def test_a_worker_killed_mid_run_is_retried_and_nothing_is_lost_or_written_twice(ray_session, tmp_path):
    items, marker = _items(12), tmp_path / "kill-once"
    marker.write_text("")
    report = _ray_run(KillsWorker(items[5], str(marker)), items, tmp_path / "out", workers=2)
    assert not marker.exists()  # the worker did die on the marked item
    assert report.status == "complete" and report.count("written") == 12 and not report.skipped
    sources = [e["source"] for e in report.entries]
    assert sorted(sources) == sorted(f"argument {k}" for k in range(1, 13)) and len(set(sources)) == 12
    assert _bars(tmp_path / "out") == {f"argument {k + 1}": _expected(i) for k, i in enumerate(items)}


def test_an_item_that_keeps_killing_its_worker_is_skipped_with_the_reason(ray_session, tmp_path, capsys):
    items = _items(6)
    report = _ray_run(KillsWorker(items[2], None), items, tmp_path / "out", workers=1)
    assert report.status == "complete" and report.count("written") == 5
    assert [(e["source"], e["kind"]) for e in report.skipped] == [("argument 3", "internal")]
    assert "worker process died 2 times while computing this item" in report.skipped[0]["reason"]
    assert "skipped argument 3: the worker process died" in capsys.readouterr().err


def test_a_worker_that_cannot_load_the_model_stops_the_run_with_the_reason(ray_session, tmp_path):
    with pytest.raises(igkit.ModelError, match="^model file /models/x.safetensors not found$"):
        _ray_run(NoModelOnWorkers(), _items(2), tmp_path / "out", workers=1)
    assert _report(tmp_path / "out")["status"] == "failed"


def test_a_plugin_missing_on_the_workers_is_one_clear_error(ray_session, tmp_path):
    with pytest.raises(igkit.IgkitError, match="the Ray run stopped: .*No module named "
                                               "'plugin_only_on_the_driver'.*same igkit and plugins"):
        _ray_run(MissingOnWorkers(), _items(2), tmp_path / "out", workers=1)


# ------------------------------------------------------------------------------------------
# the real domains, where installed: the same files and Parquet tables as the local engine
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("domain, items", [
    ("molecules", ["c1ccccc1O", "CCO", "not a smiles", "c1ccccc1C(=O)O", "CCN"]),
    ("text", ["the cat sat on the mat", "a b c", "the market fell"]),
])
def test_real_domains_equal_the_local_engine(ray_session, tmp_path, domain, items):
    pandas = pytest.importorskip("pandas")
    if domain not in igkit.domains():
        pytest.skip(f"the {domain} domain is not loaded (see `igkit plugins`)")
    local, remote = tmp_path / "local", tmp_path / "ray"
    common = ["--no-pictures", "--format", "parquet"]
    code_local = _cli(domain, "explain", *items, "--out", str(local), *common)
    assert _cli(domain, "explain", *items, "--out", str(remote), *common, "--engine", "ray") == code_local
    a, b = _report(local), _report(remote)
    assert b["run_id"] == a["run_id"] and b["counts"] == a["counts"] and b["counts"]["written"] >= 1
    assert b["items"] == a["items"]  # same sources, order, folders, skip kinds and reasons
    for table in ("items", "units"):
        here, there = pandas.read_parquet(local / table), pandas.read_parquet(remote / table)
        assert here.columns.tolist() == there.columns.tolist()
        numbers = [c for c in here.columns if here[c].dtype.kind == "f" and c != "seconds"]
        pandas.testing.assert_frame_equal(here[numbers], there[numbers], rtol=1e-5, atol=1e-6)
        words = [c for c in here.columns if c not in numbers and c != "seconds"]
        assert here[words].astype(str).values.tolist() == there[words].astype(str).values.tolist()
