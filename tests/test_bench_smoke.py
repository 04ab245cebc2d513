"""The benchmark runs end to end on a tiny case and writes a well-formed table and JSON.

No timing is asserted: numbers from a shared CI machine mean nothing. What must
hold is that every selected case produces finite ratios whose 'met' flag agrees
with its goal, and that the memory probe runs in its own process (case 5 as a
whole starts five such processes, too slow for the test suite).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from conftest import REPO, shared_data_dir

sys.path.insert(0, str(REPO))  # bench/ runs from the repository root; it is not installed with igkit
from bench.measure import interleaved_medians  # noqa: E402
from bench.memory import measure_in_subprocess  # noqa: E402
from bench.report import Row, format_markdown  # noqa: E402

TINY = ["--cases", "1,2,3", "--threads", "1", "--image-size", "32", "--steps", "3", "--repeats", "1",
        "--trusted-examples", "1", "--trusted-repeats", "1", "--trusted-image-size", "32", "--cnn-train-steps", "20"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("bench") / "tiny.json"
    done = subprocess.run([sys.executable, "-m", "bench", *TINY, "--data-dir", str(shared_data_dir()),
                           "--json", str(path)], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio" in done.stdout and "met?" in done.stdout
    return json.loads(path.read_text())


def test_every_selected_case_reports_finite_ratios(report):
    cases = {r["case"].split()[0] for r in report["results"]}
    assert cases == {"1", "2", "3"}
    for r in report["results"]:
        for key in ("igkit", "reference", "ratio"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["case"], key, r[key])


def test_met_flag_agrees_with_goal(report):
    for r in report["results"]:
        value = r["igkit"] if r["goal_on_igkit"] else r["ratio"]
        expected = value <= r["goal"] if r["lower_is_better"] else value >= r["goal"]
        assert r["met"] == expected, r["case"]


def test_igkit_and_captum_compute_the_same_attributions(report):
    googlenet = next(r for r in report["results"] if r["case"].startswith("2"))
    assert googlenet["details"]["max_attribution_difference_vs_captum"] < 1e-4


def test_trusted_answer_reaches_the_tolerance(report):
    for r in report["results"]:
        if r["case"].startswith("3"):
            d = r["details"]
            for mode in ("default", "planned", "off"):
                assert d["worst_error"][mode] <= d["tolerance"], (r["metric"], mode)
            # both answers are compared with a converged reference: close to it, not identical
            for error in d["attribution_error_vs_reference"]["worst"].values():
                assert 0 < error < 0.5, r["metric"]
            # the model alone replays each contender's recorded passes: timed and reported for both (the
            # replay can come out a little above a contender's own seconds in noisy rounds, so no upper bound)
            for name, alone in d["model_alone_seconds"].items():
                assert 0 < alone, (r["metric"], name)


def test_report_names_machine_and_command(report):
    assert report["machine"]["nproc"] >= 1 and report["machine"]["torch"]
    assert report["settings"]["command"].startswith("python -m bench --cases")


def test_a_reason_two_missed_rows_share_is_listed_once():
    rows = [Row("3 trusted answer", f"cnn: {what}", 2.0, 3.0, "Captum", 1.5, 2.0, False, "s",
                why_missed="the model alone is 1.5x") for what in ("evaluations", "seconds")]
    rows.append(Row("4 throughput", "molecules: mol/s", 1.0, 1.0, "Captum", 1.0, 10.0, False, "mol/s",
                    why_missed="batching wins 1.5x at most"))
    reasons = [line for line in format_markdown(rows, []).splitlines() if line.startswith("- ")]
    assert reasons == ["- 3 trusted answer (cnn) missed: the model alone is 1.5x",
                       "- 4 throughput (molecules) missed: batching wins 1.5x at most"]


def test_rounds_shuffle_so_no_contender_always_runs_first_or_after_the_same_one():
    order: list[str] = []
    names = "abcd"
    interleaved_medians({n: (lambda n=n: order.append(n)) for n in names}, repeats=8, warmup=0)
    rounds = [order[k:k + 4] for k in range(0, len(order), 4)]
    assert all(sorted(r) == list(names) for r in rounds)          # every contender once a round
    assert {r[0] for r in rounds} == set(names)                     # each runs first some time
    for n in names:                                                 # and follows more than one other
        assert len({r[r.index(n) - 1] for r in rounds if r.index(n) > 0}) > 1, n
    again: list[str] = []
    interleaved_medians({n: (lambda n=n: again.append(n)) for n in names}, repeats=8, warmup=0)
    assert again == order                                           # seeded: the same orders every run


def test_short_runs_get_more_rounds_until_each_contender_was_timed_long_enough():
    calls = {"quick": 0, "slow": 0}

    def run(name: str, pause: float):
        def contender() -> None:
            calls[name] += 1
            time.sleep(pause)
        return contender

    contenders = {"quick": run("quick", 0.0), "slow": run("slow", 0.02)}
    interleaved_medians(contenders, repeats=2, warmup=0)
    assert calls == {"quick": 2, "slow": 2}                         # no minimum: the rounds asked for
    calls.update(quick=0, slow=0)
    interleaved_medians(contenders, repeats=2, warmup=0, min_seconds=0.05, max_repeats=6)
    assert calls == {"quick": 6, "slow": 6}                         # the quick one never reaches it: the cap
    calls.update(quick=0, slow=0)
    interleaved_medians({"slow": run("slow", 0.02)}, repeats=2, warmup=0, min_seconds=0.05, max_repeats=25)
    assert 3 <= calls["slow"] <= 4                                  # stops once 0.05 s were timed


def test_memory_probe_reports_a_peak_from_a_fresh_process():
    probe = measure_in_subprocess("igkit", steps=2, size=32, threads=1)
    assert probe["peak"] >= probe["before"] > 0
