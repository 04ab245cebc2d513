"""``python -m bench.ray_scaling``: the local engine against Ray with 1 and 2 workers, resume on both,
and the memory of streaming a big ``--input``, side by side in one run.

The same molecules (the first ``--molecules`` of the benzene test split, shipped weave
model, IG with ``--steps`` Gauss–Legendre points, ``--no-pictures``) go through the one
driver with

- ``local``: the local engine;
- ``ray-1``, ``ray-2``: the Ray engine with 1 and 2 workers on one local Ray, whose actors
  were started and loaded the model in a warm-up run (the fixed cost of a fresh pool is
  measured apart: ``ray_fixed_seconds``);

every one with ``--threads`` torch threads (per worker for Ray). They alternate (the order
rotates every round) and the medians are compared: Ray 1 worker ÷ local (goal ≤ 1.05) and
Ray 1 ÷ Ray 2 workers (goal ≥ 1.7 on an idle 2-core machine). Then each engine's finished
run is run again (resume: every molecule kept; goal ≤ 5 % of the first run), and the peak
RSS of reading ``--input`` files of 10k and 100k molecules (CSV and Parquet, in a fresh
process each, reading every row) is compared (goal: 100k within 10 % of 10k).
Writes everything to ``--json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: what a fresh process reads to measure the memory of streaming an --input file
_READ_ALL = """
import resource, sys, igkit
domain = igkit.get_domain("molecules")
count = sum(1 for _ in domain.read_items([sys.argv[1]], smiles_col="smiles", id_col="mol_id"))
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ray_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=200, help="molecules of the benzene test split")
    p.add_argument("--steps", type=int, default=50, help="IG path points per molecule (fixed rule)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the local engine and of each Ray worker")
    p.add_argument("--rounds", type=int, default=1, help="timed rounds per contender (medians are compared)")
    p.add_argument("--stream-rows", type=int, nargs=2, default=(10_000, 100_000), metavar=("SMALL", "BIG"),
                   help="rows of the two --input files whose reading memory is compared")
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("IGKIT_SHARED_DATA", REPO.parent / "shared" / "data")),
                   help="folder holding benzene/benzene.csv")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "ray_scaling.json",
                   help="where to write the measurements")
    return p.parse_args(argv)


def benzene_rows(data_dir: Path) -> list[dict[str, str]]:
    source = data_dir / "benzene" / "benzene.csv"
    if not source.is_file():
        raise SystemExit(f"skipped: {source} not found (set --data-dir or IGKIT_SHARED_DATA)")
    with source.open(newline="") as handle:
        return [r for r in csv.DictReader(handle) if r.get("split") == "test"]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mol_id", "smiles"])
        writer.writerows(rows)
    return path


def stream_memory(rows: list[dict[str, str]], sizes: tuple[int, int], folder: Path) -> dict[str, dict]:
    """Peak RSS (MiB) of a fresh process reading every row of an --input file, per format and size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: dict[str, dict] = {}
    for size in sizes:  # distinct ids: every row is its own molecule
        table = [(f"m{k}", rows[k % len(rows)]["smiles"]) for k in range(size)]
        paths = {"csv": write_csv(folder / f"mols-{size}.csv", table),
                 "parquet": folder / f"mols-{size}.parquet"}
        pq.write_table(pa.table({"mol_id": [r[0] for r in table], "smiles": [r[1] for r in table]}),
                       paths["parquet"])
        for kind, path in paths.items():
            done = subprocess.run([sys.executable, "-c", _READ_ALL, str(path)], capture_output=True, text=True,
                                  check=True)
            count, rss = done.stdout.split()
            found.setdefault(kind, {})[str(size)] = {"rows": int(count), "peak_rss_mib": float(rss)}
    for kind, by_size in found.items():
        small, big = (by_size[str(s)]["peak_rss_mib"] for s in sizes)
        by_size["ratio"] = big / small
    return found


def agree(local: Path, other: Path) -> dict[str, float]:
    """Largest differences between two runs' summary.json files, item by item."""
    worst = {"attribution_sum": 0.0, "completeness_error": 0.0, "steps": 0.0, "missing": 0.0}
    for entry in json.loads((local / "report.json").read_text())["items"]:
        if entry["status"] != "written":
            continue
        path = other / entry["folder"] / "summary.json"
        if not path.is_file():
            worst["missing"] += 1
            continue
        a, b = (json.loads(p.read_text()) for p in (local / entry["folder"] / "summary.json", path))
        for key in ("attribution_sum", "completeness_error", "steps"):
            worst[key] = max(worst[key], abs(a[key] - b[key]))
    return worst


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import igkit
    from igkit.api import default_settings, run_options
    from igkit.run.engines import get_engine
    from igkit.run.engines.ray import connect, require_ray
    from igkit.run.run_folder import run_to_folder

    torch.set_num_threads(args.threads)
    # 50 fixed steps leave some molecules above 5% completeness error: one warning per group would
    # flood stderr (and cost the local engine time the Ray workers do not spend)
    warnings.filterwarnings("ignore", category=igkit.IgkitWarning)
    ray = require_ray()
    domain = igkit.get_domain("molecules")
    settings = default_settings(domain, id_col="mol_id")
    options = run_options(domain, steps=args.steps)
    work = Path(tempfile.mkdtemp(prefix="igkit-ray-bench-"))
    rows = benzene_rows(args.data_dir)
    data = write_csv(work / "mols.csv", [(r["mol_id"], r["smiles"]) for r in rows[:args.molecules]])
    warm = write_csv(work / "warm.csv", [(r["mol_id"], r["smiles"]) for r in rows[-4:]])
    model = domain.load_model(None, **settings)

    start = time.perf_counter()
    connect(num_cpus=2 * args.threads)
    ray_start = time.perf_counter() - start
    counter = iter(range(10 ** 6))
    outs: dict[str, Path] = {}
    engines: dict[str, dict] = {}

    def explain(name: str, path: Path, out_given: Path | None = None) -> tuple[float, int, Path]:
        engine = get_engine("local") if name == "local" else get_engine(
            "ray", workers=int(name.split("-")[1]), threads=args.threads)
        out = out_given or work / f"o{next(counter)}"
        t = time.perf_counter()
        report = run_to_folder(domain, model, domain.read_items([str(path)], **settings), out,
                               settings=settings, options=options, pictures=False, show_progress=False,
                               engine=engine)
        engines[name if out_given is None else f"{name} resumed"] = report.engine
        return time.perf_counter() - t, report.count("written") + report.count("kept"), out

    fixed = explain("ray-2", warm)[0]  # a fresh pool: actors start, each loads the model
    names = ["local", "ray-1", "ray-2"]
    times: dict[str, list[float]] = {name: [] for name in names}
    done: dict[str, int] = {}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, count, outs[name] = explain(name, data)
            times[name].append(seconds)
            done[name] = count
            print(f"round {r + 1}: {name:<6} {seconds:8.1f} s  {count / seconds:6.1f} molecules/s",
                  file=sys.stderr)
    med = {name: statistics.median(v) for name, v in times.items()}
    resume = {name: explain(name, data, outs[name])[0] for name in ("local", "ray-2")}
    ratios = {"ray-1 / local": med["ray-1"] / med["local"], "scaling ray-1 / ray-2": med["ray-1"] / med["ray-2"],
              "resume / first run, local": resume["local"] / med["local"],
              "resume / first run, ray-2": resume["ray-2"] / med["ray-2"]}
    agreement = {name: agree(outs["local"], outs[name]) for name in ("ray-1", "ray-2")}
    ray.shutdown()
    memory = stream_memory(rows, tuple(args.stream_rows), work)

    print(f"\n{args.molecules} benzene test molecules, IG {args.steps} steps, {args.threads} torch thread(s) "
          f"per engine/worker, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'contender':<10} {'seconds':>9} {'molecules/s':>12} {'÷ local':>8}")
    for name in names:
        print(f"{name:<10} {med[name]:9.1f} {done[name] / med[name]:12.1f} {med[name] / med['local']:8.2f}")
    for name, value in ratios.items():
        print(f"{name:<28} {value:6.3f}")
    print(f"fixed cost of a fresh Ray pool (2 actors start and load the model, 4 molecules): {fixed:.1f} s; "
          f"starting local Ray: {ray_start:.1f} s")
    for kind, by_size in memory.items():
        small, big = args.stream_rows
        print(f"reading --input {kind}: peak RSS {by_size[str(small)]['peak_rss_mib']:.0f} MiB at {small:,} rows, "
              f"{by_size[str(big)]['peak_rss_mib']:.0f} MiB at {big:,} rows (× {by_size['ratio']:.3f})")
    for name, worst in agreement.items():
        print(f"{name} vs local, largest difference over all molecules: {worst}")
    from bench.report import machine

    result = {"settings": vars(args) | {"json": str(args.json), "data_dir": str(args.data_dir)},
              "machine": machine() | {"loadavg": os.getloadavg()}, "seconds": times, "median_seconds": med,
              "resume_seconds": resume, "molecules": done, "ratios": ratios, "agreement": agreement,
              "engines": engines, "ray_fixed_seconds": fixed, "ray_start_seconds": ray_start,
              "input_stream_memory": memory}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
