"""The Ray engine on a cluster of two nodes (``ray.cluster_utils.Cluster``, one CPU each), joined
through ``--ray-address`` as a user would: each node runs a worker, and the files equal a local run's."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

import igkit
from igkit.domain import Domain, Prepared, text_item
from igkit.run.engines import get_engine
from igkit.run.run_folder import run_to_folder
from igkit.run.runner import RunOptions

HAVE_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None
WEIGHTS = torch.tensor([1.0, -3.0])


class PairsDomain(Domain):
    """Items are two comma-separated numbers; F(x) = x · w; one item per group (windows of 4)."""

    name = "pairs"
    max_group = 1

    def load_model(self, source, **settings):
        return WEIGHTS

    def read_items(self, sources, **settings):
        return [text_item(f"argument {k}", text) for k, text in enumerate(sources, start=1)]

    def prepare(self, model, value, **settings):
        x = torch.tensor([[float(v) for v in value.split(",")]])
        return Prepared(name=value, inputs=x, forward=lambda v: v @ model, label="score", group=0)


@pytest.fixture(scope="module")
def cluster():
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install 'igkit[ray]')")
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("another Ray session is open in this process")
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield nodes
    if ray.is_initialized():
        ray.shutdown()
    nodes.shutdown()


def _run(out: Path, items: list[str], engine):
    domain = PairsDomain()
    return run_to_folder(domain, WEIGHTS, domain.read_items(items), out, settings={},
                         options=RunOptions(igkit.Integration(steps=4)), show_progress=False, engine=engine,
                         output_format="parquet")


def test_two_nodes_each_run_a_worker_and_write_what_a_local_run_writes(cluster, tmp_path):
    items = [f"{k},{k % 4}" for k in range(16)]
    remote = _run(tmp_path / "ray", items, get_engine("ray", address=cluster.address, workers=2, threads=1))
    local = _run(tmp_path / "local", items, get_engine("local"))
    assert remote.engine["nodes_used"] == 2 and remote.engine["workers_used"] == 2
    assert remote.as_dict()["items"] == local.as_dict()["items"]
    for entry in local.entries:
        summaries = [json.loads((out / entry["folder"] / "summary.json").read_text())
                     for out in (tmp_path / "local", tmp_path / "ray")]
        assert [s["attribution_sum"] for s in summaries] == [s["score_input"] for s in summaries[:1]] * 2
