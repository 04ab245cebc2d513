"""``python -m bench.ray_scaling``: the local engine against Ray with 1 and 2 workers, side by side.

The same molecules (the first ``--molecules`` of the benzene test split, shipped weave
model, IG with ``--steps`` Gauss–Legendre points, no pictures) are explained by

- ``local``: the local engine into a folder (``igkit molecules explain --no-pictures``:
  one folder of tables per molecule, the run's tables);
- ``memory``: the same runner in memory (``igkit.explain``): the compute alone;
- ``ray-1``, ``ray-2``: ``--engine ray --no-pictures`` with 1 and 2 workers (Parquet rows
  only, no folders) on one local Ray started once;

every one with ``--threads`` torch threads (per worker for Ray). They alternate (the
order rotates every round) and the medians are compared: Ray's overhead (ray-1 ÷
memory: the same compute), what users get (ray-1 ÷ local), scaling (ray-1 ÷ ray-2) and
speedup (local ÷ ray-2). Each Ray run includes starting its actor pool and loading
the model in every actor (also measured alone on ``--warmup`` molecules: the fixed cost
per run), not starting Ray (reported apart). Writes everything to ``--json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ray_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=2000, help="molecules of the benzene test split")
    p.add_argument("--steps", type=int, default=50, help="IG path points per molecule (fixed rule)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the local engine and of each Ray worker")
    p.add_argument("--rounds", type=int, default=1, help="timed rounds per contender (medians are compared)")
    p.add_argument("--warmup", type=int, default=8,
                   help="molecules of the Ray run that measures the fixed cost")
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("IGKIT_SHARED_DATA", REPO.parent / "shared" / "data")),
                   help="folder holding benzene/benzene.csv")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "ray_scaling.json",
                   help="where to write the measurements")
    return p.parse_args(argv)


def molecules_csv(data_dir: Path, n: int, folder: Path) -> Path:
    source = data_dir / "benzene" / "benzene.csv"
    if not source.is_file():
        raise SystemExit(f"skipped: {source} not found (set --data-dir or IGKIT_SHARED_DATA)")
    with source.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("split") == "test"][:n]
    path = folder / f"benzene-test-{len(rows)}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mol_id", "smiles"])
        writer.writerows([r["mol_id"], r["smiles"]] for r in rows)
    return path


def agree(local: Path, ray_out: Path) -> dict[str, float]:
    """Largest differences between the local run's summary.json files and the Ray run's rows."""
    import pyarrow.parquet as pq

    rows = {r["digest"]: r for r in pq.read_table(ray_out / "attributions").to_pylist()}
    worst = {"attribution_sum": 0.0, "completeness_error": 0.0, "steps": 0.0, "missing": 0.0}
    for entry in json.loads((local / "report.json").read_text())["items"]:
        if entry["status"] != "written":
            continue
        row = rows.get(entry["digest"])
        if row is None:
            worst["missing"] += 1
            continue
        summary = json.loads((local / entry["folder"] / "summary.json").read_text())
        for key in ("attribution_sum", "completeness_error", "steps"):
            worst[key] = max(worst[key], abs(summary[key] - row[key]))
    return worst


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import igkit
    from igkit.api import default_settings, run_options
    from igkit.ray_engine import connect, require_ray, run_to_folder_ray
    from igkit.run_folder import run_to_folder

    torch.set_num_threads(args.threads)
    # 50 fixed steps leave some molecules above 5% completeness error: one warning per group would
    # flood stderr (and cost the in-process contenders time the Ray workers do not spend)
    warnings.filterwarnings("ignore", category=igkit.IgkitWarning)
    ray = require_ray()
    domain = igkit.get_domain("molecules")
    settings = default_settings(domain, id_col="mol_id")
    options = run_options(domain, steps=args.steps)
    work = Path(tempfile.mkdtemp(prefix="igkit-ray-bench-"))
    data = molecules_csv(args.data_dir, args.molecules, work)
    warm = molecules_csv(args.data_dir, args.warmup, work)
    model = domain.load_model(None, **settings)

    start = time.perf_counter()
    connect(num_cpus=2 * args.threads)
    ray_start = time.perf_counter() - start

    counter = iter(range(10 ** 6))
    outs: dict[str, Path] = {}

    def local(path: Path) -> tuple[float, int]:
        t = time.perf_counter()
        out = outs["local"] = work / f"o{next(counter)}"
        report = run_to_folder(domain, model, domain.read_items([str(path)], **settings), out,
                               settings=settings, options=options, pictures=False, show_progress=False)
        return time.perf_counter() - t, report.count("written")

    engine: dict[str, dict] = {}

    def on_ray(workers: int, path: Path) -> tuple[float, int]:
        t = time.perf_counter()
        out = outs[f"ray-{workers}"] = work / f"o{next(counter)}"
        report = run_to_folder_ray(domain, domain.read_items([str(path)], **settings), out,
                                   settings=settings, options=options, pictures=False, show_progress=False,
                                   workers=workers, threads=args.threads)
        seconds = time.perf_counter() - t
        parquet = sum(p.stat().st_size for p in (out / "attributions").iterdir())
        per_item = parquet / max(1, report.count("written"))
        engine[f"ray-{workers}"] = {**report.engine, "parquet_bytes": parquet,
                                    "parquet_bytes_per_item": per_item}
        return seconds, report.count("written")

    def in_memory(path: Path) -> tuple[float, int]:
        t = time.perf_counter()
        found = igkit.explain(domain, [str(path)], model=model, integration={"steps": args.steps},
                              id_col="mol_id")
        return time.perf_counter() - t, len(found)

    contenders = {"local": lambda: local(data), "memory": lambda: in_memory(data),
                  "ray-1": lambda: on_ray(1, data), "ray-2": lambda: on_ray(2, data)}
    fixed = [on_ray(1, warm)[0] for _ in range(2)]  # pool start + model load (+ a few molecules)
    engine.clear()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    written: dict[str, int] = {}
    names = list(contenders)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, count = contenders[name]()
            times[name].append(seconds)
            written[name] = count
            print(f"round {r + 1}: {name:<6} {seconds:8.1f} s  {count / seconds:6.1f} molecules/s",
                  file=sys.stderr)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratios = {"overhead ray-1 / local": med["ray-1"] / med["local"],
              "overhead ray-1 / memory": med["ray-1"] / med["memory"],
              "scaling ray-1 / ray-2": med["ray-1"] / med["ray-2"],
              "speedup local / ray-2": med["local"] / med["ray-2"]}
    print(f"\n{args.molecules} benzene test molecules, IG {args.steps} steps, {args.threads} torch thread(s) "
          f"per engine/worker, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'contender':<10} {'seconds':>9} {'molecules/s':>12} {'÷ local':>8}")
    for name in names:
        rate = written[name] / med[name]
        print(f"{name:<10} {med[name]:9.1f} {rate:12.1f} {med[name] / med['local']:8.2f}")
    for name, value in ratios.items():
        print(f"{name:<24} {value:6.2f}")
    print(f"fixed cost of a Ray run (pool start + model load, {args.warmup} molecules): "
          f"{statistics.median(fixed):.1f} s; starting local Ray: {ray_start:.1f} s")
    for name, info in engine.items():
        print(f"{name}: worker peak RSS {info.get('worker_peak_rss_mib')} MiB, Parquet "
              f"{info['parquet_bytes_per_item']:.0f} bytes per molecule")
    agreement = {name: agree(outs["local"], outs[name]) for name in ("ray-1", "ray-2")}
    for name, worst in agreement.items():
        print(f"{name} vs local, largest difference over all molecules: {worst}")
    from bench.report import machine

    result = {"settings": vars(args) | {"json": str(args.json), "data_dir": str(args.data_dir)},
              "machine": machine() | {"loadavg": os.getloadavg()}, "seconds": times, "median_seconds": med,
              "written": written, "molecules_per_second": {n: written[n] / med[n] for n in names},
              "ratios": ratios, "agreement": agreement, "ray_engine": engine, "ray_fixed_seconds": fixed,
              "ray_start_seconds": ray_start}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
