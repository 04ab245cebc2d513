"""``python -m bench.streaming``: the memory of a big ``--input``, 10k against 100k SMILES rows.

Issue 17 asks that ``--input`` be read in bounded memory: peak RSS at 100k rows within 10 %
of 10k rows. Each measurement runs in a fresh process of its own (``--child``), so one
cannot hide another's peak:

- ``read csv`` / ``read smi`` / ``read parquet``: the molecules domain's ``read_items`` over
  the file, every row consumed (what ``igkit molecules explain --input FILE`` reads before
  any molecule is computed);
- ``drive csv``: those items through the one run driver (``run_to_folder``: resume check per
  item, report entries, ``report.json`` rewrites, the run's tables) into a fresh ``--out``,
  with an engine that computes nothing and reports every item written. Computing IG holds
  one window of items at a time whatever the input's size, so what can grow with the input
  is the reading and the driver's bookkeeping, and that is what this measures (a real run of
  100k molecules would take hours).

Rows are SMILES of the benzene data set (``--data-dir``) or RDKit's NCI ``first_5K.smi``,
repeated with distinct ids (``m0``, ``m1``, ...) so every row is an item of its own. Peak
RSS is the child's ``VmHWM``; ``before`` is its ``VmHWM`` after the imports and the model,
before the first row, and ``growth`` the difference.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
#: what each size is measured with: (path, file kind)
MEASURES = (("read", "csv"), ("read", "smi"), ("read", "parquet"), ("drive", "csv"))
GOAL = 1.10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                   help="input sizes; the first is the reference the others are compared with")
    p.add_argument("--drive-rows", type=int, default=100_000,
                   help="the largest input also driven through run_to_folder (the driver takes ~0.15 ms a row)")
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("IGKIT_SHARED_DATA", REPO.parent / "shared" / "data")),
                   help="folder holding benzene/benzene.csv (else RDKit's NCI first_5K.smi is used)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "streaming.json",
                   help="where to write the measurements (and a .md table beside it)")
    p.add_argument("--child", nargs=3, metavar=("PATH", "KIND", "FILE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------- the child
def peak_rss_mib() -> float:
    """This process's high-water mark of resident memory (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def report_only_engine() -> Any:
    """An engine that computes nothing and reports each item written: the driver's own cost."""
    from igkit.run.engines import Engine, written_entry
    from igkit.run.run_layout import folder_name

    class ReportOnly(Engine):
        name = "report-only"

        def run(self, job: Any, model: Any, items: Iterator[Any], on_item: Callable) -> Iterator[dict]:
            for item in items:
                yield written_entry(item, "written", folder_name(item))
    return ReportOnly()


def child(path: str, kind: str, file: str) -> dict[str, Any]:
    """One measurement in this (fresh) process: rows seen, peak RSS before and after, seconds."""
    import torch

    import igkit
    from igkit.api import default_settings, run_options
    from igkit.run.run_folder import run_to_folder

    torch.set_num_threads(1)
    domain = igkit.get_domain("molecules")
    settings = default_settings(domain, id_col="mol_id")
    model = domain.load_model(None, **settings) if path == "drive" else None
    before = peak_rss_mib()
    start = time.perf_counter()
    items = domain.read_items([file], **settings)
    if path == "read":
        rows = sum(1 for _ in items)
    else:
        out = Path(file).with_suffix(".out")
        report = run_to_folder(domain, model, items, out, settings=settings, options=run_options(domain),
                               pictures=False, show_progress=False, engine=report_only_engine())
        rows = len(report)
    return {"path": path, "kind": kind, "rows": rows, "seconds": round(time.perf_counter() - start, 2),
            "before_mib": round(before, 1), "peak_rss_mib": round(peak_rss_mib(), 1)}


# ---------------------------------------------------------------------------------- the parent
def smiles_pool(data_dir: Path) -> tuple[list[str], str]:
    """Distinct SMILES to repeat, and where they came from."""
    benzene = data_dir / "benzene" / "benzene.csv"
    if benzene.is_file():
        with benzene.open(newline="") as handle:
            return list(dict.fromkeys(r["smiles"] for r in csv.DictReader(handle))), str(benzene)
    from rdkit import RDConfig

    nci = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    return [line.split()[0] for line in nci.read_text().splitlines() if line.strip()], str(nci)


def write_inputs(folder: Path, smiles: list[str], rows: int) -> dict[str, Path]:
    """The same ``rows`` molecules (ids ``m0``...) as CSV, ``.smi`` and Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"m{k}" for k in range(rows)]
    column = [smiles[k % len(smiles)] for k in range(rows)]
    paths = {kind: folder / f"mols-{rows}.{kind}" for kind in ("csv", "smi", "parquet")}
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mol_id", "smiles"])
        writer.writerows(zip(ids, column))
    paths["smi"].write_text("".join(f"{s} {i}\n" for i, s in zip(ids, column)))
    pq.write_table(pa.table({"mol_id": ids, "smiles": column}), paths["parquet"])
    return paths


def measure(path: str, kind: str, file: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.streaming", "--child", path, kind, str(file)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "IGKIT_THREADS": "1", "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(results: dict[str, dict[str, dict]], sizes: list[int]) -> dict[str, dict[str, float]]:
    """Per measure: the largest peak over the smallest size's (the goal's ratio), and the growth
    per extra row between the smallest and the largest size measured, in bytes."""
    found = {}
    for name, by_size in results.items():
        measured = [n for n in sizes if str(n) in by_size]
        if len(measured) < 2:
            found[name] = {"peak_ratio": None, "bytes_per_row": None}
            continue
        small, big = by_size[str(measured[0])], by_size[str(measured[-1])]
        found[name] = {"peak_ratio": round(max(by_size[str(n)]["peak_rss_mib"] for n in measured[1:])
                                           / small["peak_rss_mib"], 3),
                       "bytes_per_row": round((big["growth_mib"] - small["growth_mib"]) * 2**20
                                              / (measured[-1] - measured[0]))}
    return found


def table(results: dict[str, dict[str, dict]], summary: dict[str, dict], sizes: list[int]) -> list[str]:
    lines = ["| what | " + " | ".join(f"{n:,} rows: peak (growth), s" for n in sizes)
             + " | peak ratio | growth per row | goal |", "| --- |" + " --- |" * (len(sizes) + 3)]
    for name, by_size in results.items():
        cells = [f"{by_size[str(n)]['peak_rss_mib']:.0f} MiB ({by_size[str(n)]['growth_mib']:+.1f}), "
                 f"{by_size[str(n)]['seconds']:.1f}" if str(n) in by_size else "not run" for n in sizes]
        ratio, per_row = summary[name]["peak_ratio"], summary[name]["bytes_per_row"]
        if ratio is None:
            lines.append(f"| {name} | " + " | ".join(cells) + f" | n/a | n/a | ≤ {GOAL:.2f} |")
            continue
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.3f} | {per_row:,} B | "
                     f"≤ {GOAL:.2f} {'✓' if ratio <= GOAL else '✗'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    smiles, origin = smiles_pool(args.data_dir)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="igkit-stream-bench-") as work:
        for rows in args.rows:
            files = write_inputs(Path(work), smiles, rows)
            for path, kind in MEASURES:
                if path == "drive" and rows > args.drive_rows:
                    continue
                found = measure(path, kind, files[kind])
                if found["rows"] != rows:
                    raise RuntimeError(f"{path} {kind}: {found['rows']} rows seen of {rows}")
                found["growth_mib"] = round(found["peak_rss_mib"] - found["before_mib"], 1)
                results.setdefault(f"{path} {kind}", {})[str(rows)] = found
                print(f"{path} {kind} {rows:>9,} rows: peak {found['peak_rss_mib']:.0f} MiB "
                      f"(growth {found['growth_mib']:+.1f}), {found['seconds']:.1f} s", file=sys.stderr)
    from bench.report import machine

    summary = summarise(results, args.rows)
    lines = table(results, summary, args.rows)
    print("\n".join(lines))
    result = {"settings": {"rows": args.rows, "drive_rows": args.drive_rows, "smiles_from": origin,
                           "distinct_smiles": len(smiles)},
              "machine": machine() | {"loadavg": os.getloadavg()}, "goal_peak_ratio": GOAL,
              "results": results, "summary": summary}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(markdown(result, lines))
    return 0


def markdown(result: dict[str, Any], lines: list[str]) -> str:
    m = result["machine"]
    return "\n".join([
        "# Streaming `--input`: peak memory by input size", "",
        "`python -m bench.streaming` (see [bench/README.md](../README.md), \"Streaming\"). Each cell is "
        "the peak RSS of a fresh process, with its growth over the peak before the first row, and the "
        "seconds the reading (or the run) took. SMILES from "
        f"`{Path(result['settings']['smiles_from']).name}` ({result['settings']['distinct_smiles']:,} "
        "distinct), repeated with distinct ids.", "", *lines, "",
        f"Machine: {m['cpu']}, {m['nproc']} cores, Python {m['python']}, torch {m['torch']}, "
        f"{m['platform']}; load average {m['loadavg'][0]:.1f} (shared with other work).", ""])


if __name__ == "__main__":
    sys.exit(main())
