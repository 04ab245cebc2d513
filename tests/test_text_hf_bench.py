"""bench/transformers.py measures what it says: both tools reach a trusted answer (completeness
within 1%) on the shipped ptb-gpt2, and Captum's attributions are checked against the same gap."""
from __future__ import annotations

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))  # bench/ runs from the repository root; it is not installed with igkit
pytest.importorskip("transformers", reason="needs the transformers extra: pip install 'igkit[transformers]'")
pytest.importorskip("captum", reason="the bench compares with Captum (test extra)")


def test_both_tools_reach_a_trusted_answer_on_the_shipped_model():
    from bench.transformers import TRUSTED, probe

    rows = [probe(tool, "ptb-gpt2", 16, threads=1, max_memory="256MiB") for tool in ("igkit", "captum")]
    for row in rows:
        assert row["trusted"] and row["runs"][-1]["error"] <= TRUSTED and row["tokens"] == 16
        assert row["peak_rss_gib"] >= row["rss_before_gib"] > 0
    assert rows[1]["runs"][0]["path_points"] == 8  # Captum starts at 8 steps and doubles
