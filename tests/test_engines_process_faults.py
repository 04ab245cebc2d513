"""A worker of ``--engine process`` that dies mid-run (issue 17, item 2): its items are retried
on a fresh worker, an item that keeps killing its worker is skipped with the reason after a
bounded number of tries, and the run's other items are written exactly once.

The domain scores comma-separated numbers with a fixed linear model (attribution = x · w) and
kills the worker computing a chosen item: ``os._exit`` or SIGKILL from inside the item, or
SIGKILL from outside while the item is being computed.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

import igkit
from igkit.domain import Domain, Item, Prepared, content_digest
from igkit.run.engines.process import MAX_CRASHES, ProcessEngine, shutdown
from igkit.run.run_folder import RunReport, run_to_folder
from igkit.run.runner import RunOptions

WEIGHTS = torch.tensor([2.0, -1.0, 0.5])


class DyingDomain(Domain):
    """Items are ``a,b,c``; F(x) = x · w. Computing an item listed in ``deaths`` ends its worker:
    ``deaths[item] = (how, times)`` with ``how`` ``exit`` (``os._exit(3)``), ``kill`` (SIGKILL
    to itself), ``wait`` (sleeps, to be killed from outside) or ``kill-writing`` (SIGKILL half
    way through writing the item's folder), at most ``times`` times. Every start of an item is
    logged in ``log`` (one file per start) so tests count the tries."""

    name = "dying"
    description = "numbers scored by a fixed linear model, killing its worker on chosen items"
    max_group = 2

    def __init__(self, log: Path, deaths: dict[str, tuple[str, int]] | None = None, pause: float = 0.0):
        self.log, self.deaths, self.pause = str(log), deaths or {}, pause

    def load_model(self, source, **settings):
        return WEIGHTS

    def read_items(self, sources, **settings):
        for number, text in enumerate(sources, start=1):
            yield Item(source=f"argument {number}", value=text, name=text, digest=content_digest(text))

    def prepare(self, model, value, **settings):
        log = Path(self.log)
        tries = len(list(log.glob(f"{value}@*")))
        (log / f"{value}@{os.getpid()}-{tries}").write_text("")
        how, times = self.deaths.get(value, ("", 0))
        if tries < times:
            if how == "exit":
                os._exit(3)
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "wait":
                time.sleep(60)  # killed from outside long before this ends
        time.sleep(self.pause)
        values = [float(v) for v in value.split(",")]
        return Prepared(name=value, inputs=torch.tensor([values]), forward=lambda v: v @ model,
                        label="score", group=0)

    def write_item(self, explanation, folder, *, pictures=True):
        values = explanation.result.attributions[0].tolist()
        (folder / "attributions.txt").write_text(" ".join(f"{v:.4f}" for v in values))
        value = explanation.item.value
        how, times = self.deaths.get(value, ("", 0))
        if how == "kill-writing" and tries(Path(self.log), value) <= times:
            os.kill(os.getpid(), signal.SIGKILL)  # the folder is still OUT/.partial-...-PID
        return ["attributions.txt"]

    def write_run(self, out_dir, folders, *, pictures=True):
        return []


@pytest.fixture(autouse=True)
def no_process_left():
    """Every test starts its own workers and stops them: no state or process carries over."""
    shutdown()
    yield
    shutdown()


def numbers(n: int) -> list[str]:
    return [f"{k},1,{k % 3}" for k in range(n)]


def run(domain: Domain, items: list[str], out: Path, workers: int = 2) -> tuple[RunReport, ProcessEngine]:
    engine = ProcessEngine(workers=workers, threads=1)
    report = run_to_folder(domain, WEIGHTS, domain.read_items(items), out, settings={},
                           options=RunOptions(igkit.Integration(steps=4)), show_progress=False, engine=engine)
    return report, engine


def tries(log: Path, item: str) -> int:
    return len(list(log.glob(f"{item}@*")))


def assert_each_item_once(out: Path, items: list[str], skipped: set[str] = frozenset()) -> dict:
    """report.json complete, one entry per input in input order, one folder per written item
    holding its own (right) attributions, no folder twice, nothing half written left."""
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete"
    entries = report["items"]
    assert [e["source"] for e in entries] == [f"argument {k}" for k in range(1, len(items) + 1)]
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    written = [e for e in entries if e["status"] == "written"]
    assert sorted(e["folder"] for e in written) == folders  # each folder once, no other folder
    for item, entry in zip(items, entries):
        if item in skipped:
            assert entry["status"] == "skipped"
            continue
        assert entry["status"] == "written", entry
        found = [float(v) for v in (out / entry["folder"] / "attributions.txt").read_text().split()]
        assert found == pytest.approx([float(v) * float(w) for v, w in zip(item.split(","), WEIGHTS)], abs=1e-4)
    assert report["counts"] == {"written": len(items) - len(skipped), "kept": 0, "duplicate": 0,
                                "skipped": len(skipped)}
    assert not list(out.glob(".partial-*")) and not list(out.glob(".*.tmp"))
    return report


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_worker_that_dies_mid_item_is_replaced_and_its_items_retried(tmp_path, how):
    items, log = numbers(12), tmp_path / "log"
    log.mkdir()
    doomed = items[5]
    report, engine = run(DyingDomain(log, {doomed: (how, 1)}), items, tmp_path / "out")
    assert report.exit_code == 0
    assert_each_item_once(tmp_path / "out", items)
    assert tries(log, doomed) == 2  # died once, then computed on a fresh worker
    assert engine.describe()["workers_replaced"] == 1
    assert json.loads((tmp_path / "out" / "report.json").read_text())["engine"]["workers_replaced"] == 1


def test_a_worker_killed_while_writing_a_folder_leaves_no_half_folder(tmp_path):
    items, log = numbers(6), tmp_path / "log"
    log.mkdir()
    report, engine = run(DyingDomain(log, {items[2]: ("kill-writing", 1)}), items, tmp_path / "out", workers=1)
    assert report.exit_code == 0 and engine.describe()["workers_replaced"] == 1
    assert_each_item_once(tmp_path / "out", items)  # also: no OUT/.partial-* left behind
    assert tries(log, items[2]) == 2


def test_an_item_that_keeps_killing_its_worker_is_skipped_after_bounded_tries(tmp_path):
    items, log = numbers(10), tmp_path / "log"
    log.mkdir()
    poison = items[3]
    report, _ = run(DyingDomain(log, {poison: ("kill", 99)}), items, tmp_path / "out")
    assert report.exit_code == 1
    result = assert_each_item_once(tmp_path / "out", items, skipped={poison})
    [entry] = [e for e in result["items"] if e["status"] == "skipped"]
    assert entry["source"] == "argument 4" and entry["kind"] == "resources"
    assert f"died {MAX_CRASHES} times" in entry["reason"] and "SIGKILL" in entry["reason"]
    assert "--batch-size" in entry["reason"]  # says what to do
    assert tries(log, poison) <= 1 + MAX_CRASHES  # once in its window, then alone until the limit


def test_a_crash_that_is_not_a_kill_is_an_internal_skip(tmp_path):
    items, log = numbers(4), tmp_path / "log"
    log.mkdir()
    report, _ = run(DyingDomain(log, {items[0]: ("exit", 99)}), items, tmp_path / "out", workers=1)
    result = assert_each_item_once(tmp_path / "out", items, skipped={items[0]})
    [entry] = [e for e in result["items"] if e["status"] == "skipped"]
    assert entry["kind"] == "internal" and "exit code 3" in entry["reason"]


def test_a_worker_killed_from_outside_mid_run_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL sent by another process while the worker computes an item (the out-of-memory
    killer's way): the window's items already on disk count once, the rest are computed again."""
    items, log = numbers(16), tmp_path / "log"
    log.mkdir()
    target = items[9]
    killed: list[int] = []

    def kill_when_started() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            started = list(log.glob(f"{target}@*"))
            if started:
                pid = int(started[0].name.split("@")[1].split("-")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    report, engine = run(DyingDomain(log, {target: ("wait", 1)}, pause=0.05), items, tmp_path / "out")
    killer.join(timeout=5)
    assert killed, "the item never started"
    assert report.exit_code == 0
    assert_each_item_once(tmp_path / "out", items)
    assert engine.describe()["workers_replaced"] == 1
    assert tries(log, target) == 2


def test_workers_that_die_before_finishing_anything_stop_the_run_with_the_reason(tmp_path, monkeypatch):
    from igkit.run.engines import process

    monkeypatch.setattr(process, "MAX_DEATHS_BEFORE_ANY", 3)  # the test pays for fewer worker starts
    items, log = numbers(12), tmp_path / "log"
    log.mkdir()
    every = {item: ("exit", 99) for item in items}
    with pytest.raises(igkit.IgkitError, match="died 3 times before any item finished .*exit code 3"):
        run(DyingDomain(log, every), items, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and report["counts"]["written"] == 0


def test_a_worker_that_died_between_runs_is_replaced_before_the_next_run(tmp_path):
    items, log = numbers(6), tmp_path / "log"
    log.mkdir()
    domain = DyingDomain(log)
    run(domain, items[:3], tmp_path / "first", workers=1)
    from igkit.run.engines import process

    [[worker]] = process._POOLS.values()
    worker.process.kill()
    worker.process.join()
    report, _ = run(domain, items, tmp_path / "second", workers=1)
    assert report.exit_code == 0
    assert_each_item_once(tmp_path / "second", items)
