"""``--engine ray`` with a transformers causal LM: a small run through Ray actors (each loading the
saved tiny GPT-2 folder itself) writes the same items, tokens, words and Parquet rows as the local
engine."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers", reason="needs the transformers extra: pip install 'igkit[transformers]'")
if importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None:
    pytest.skip("Ray is not installed (pip install 'igkit[ray]')", allow_module_level=True)

from igkit.cli.main import main

from hf_models import save_tiny

ITEMS = ["the stock market fell ,", "   ", "the shareholders claimed more"]


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray with 2 CPUs for this module."""
    import ray

    from igkit.run.engines.ray import connect

    started = connect(num_cpus=2)
    yield ray
    if started:
        ray.shutdown()


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_ray_equals_the_local_engine_on_a_saved_gpt2_folder(ray_session, tmp_path):
    pandas = pytest.importorskip("pandas")
    torch.set_num_threads(1)
    folder = save_tiny(tmp_path / "tiny-gpt2", positions=32)
    local, remote = tmp_path / "local", tmp_path / "ray"
    common = ["--model", str(folder), "--contrast", "shares of", "--baseline", "eos", "--steps", "8",
              "--no-pictures", "--format", "parquet", "--threads", "1", "--quiet"]
    code = main(["text", "explain", *ITEMS, "--out", str(local), *common])
    assert code == 1  # the blank context is skipped, the others written
    assert main(["text", "explain", *ITEMS, "--out", str(remote), *common, "--engine", "ray", "--workers", "1"]) == code
    a, b = (json.loads((out / "report.json").read_text()) for out in (local, remote))
    assert b["run_id"] == a["run_id"] and b["counts"] == a["counts"] and a["counts"]["written"] == 2
    assert b["items"] == a["items"]  # same sources, order, folders and skip reasons
    assert a["engine"]["name"] == "local" and b["engine"]["name"] == "ray" and b["engine"]["workers_used"] == 1
    for entry in (e for e in a["items"] if e.get("folder")):
        for table in ("tokens.csv", "words.csv"):
            here, there = rows(local / entry["folder"] / table), rows(remote / entry["folder"] / table)
            assert [r["word"] for r in here] == [r["word"] for r in there]
            for mine, theirs in zip(here, there):
                assert float(theirs["attribution"]) == pytest.approx(float(mine["attribution"]), rel=1e-5, abs=1e-6)
        summaries = [json.loads((out / entry["folder"] / "summary.json").read_text()) for out in (local, remote)]
        assert summaries[1]["score"] == summaries[0]["score"] and "' shares of'" in summaries[0]["score"]
        assert summaries[1]["score_input"] == pytest.approx(summaries[0]["score_input"], abs=1e-6)
    units = [pandas.read_parquet(out / "units") for out in (local, remote)]
    numbers = [c for c in units[0].columns if units[0][c].dtype.kind == "f"]
    pandas.testing.assert_frame_equal(units[0][numbers], units[1][numbers], rtol=1e-5, atol=1e-6)
