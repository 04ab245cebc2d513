"""``python -m bench``: run the benchmark cases, print the table, write the JSON.

Sizes come from a profile (the default run, or ``--quick``); any size option
given on the command line overrides its profile value.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .report import Row, Skipped, format_markdown, format_table, machine, write_json

REPO = Path(__file__).resolve().parents[1]
CASES = ("1", "2", "3", "4", "5")
DESCRIPTION = "igkit benchmarks: igkit against the cost floor and against Captum"
PROFILES = {
    "full": {"steps": 50, "image_size": 224, "repeats": 3, "trusted_examples": 8, "trusted_repeats": 2,
             "trusted_image_size": 112, "cnn_train_steps": 600, "molecules": 2000, "predictions": 1000, "memory_steps": 300,
             "captum_memory_probe": 20},
    "quick": {"steps": 10, "image_size": 224, "repeats": 1, "trusted_examples": 2, "trusted_repeats": 1,
              "trusted_image_size": 64, "cnn_train_steps": 150, "molecules": 12, "predictions": 12, "memory_steps": 30,
              "captum_memory_probe": 15},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    p.add_argument("--quick", action="store_true", help="reduced sizes: every ratio in under 3 minutes")
    p.add_argument("--cases", default=",".join(CASES),
                   help="comma-separated case numbers: 1 overhead vs floor, 2 vs Captum, 3 time to a "
                        "trusted answer, 4 data-set throughput, 5 memory (default: all)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "latest.json",
                   help="where to write everything measured (default bench/results/latest.json)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the reference machine has 2 cores)")
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("IGKIT_SHARED_DATA", REPO.parent / "shared" / "data")),
                   help="folder holding benzene/benzene.csv and ptb/ (default ../shared/data)")
    p.add_argument("--molecule-model", default=None, help="weave checkpoint (default: the shipped one)")
    p.add_argument("--text-model", default=None, help="language model checkpoint (default: the shipped one)")
    sizes = p.add_argument_group("sizes (defaults from the profile)")
    sizes.add_argument("--steps", type=int, help="GoogLeNet IG steps (cases 1, 2)")
    sizes.add_argument("--image-size", type=int, help="GoogLeNet image side in pixels (cases 1, 2, 5)")
    sizes.add_argument("--repeats", type=int, help="timed rounds per contender (medians are compared)")
    sizes.add_argument("--trusted-examples", type=int, help="examples per model in case 3")
    sizes.add_argument("--trusted-repeats", type=int,
                       help="timed rounds per example in case 3 (at least: short runs get more, up to 25)")
    sizes.add_argument("--trusted-image-size", type=int, help="GoogLeNet image side in pixels in case 3")
    sizes.add_argument("--cnn-train-steps", type=int,
                       help="Adam steps (batches of 64) that train case 3's small CNN")
    sizes.add_argument("--tolerance", type=float, default=0.01, help="relative completeness error (case 3)")
    sizes.add_argument("--max-steps", type=int, default=1024, help="step cap for both contenders (case 3)")
    sizes.add_argument("--molecules", type=int, help="test molecules in case 4 (the full split: 2000)")
    sizes.add_argument("--predictions", type=int, help="PTB validation predictions in case 4 (issue: 1000)")
    sizes.add_argument("--throughput-steps", type=int, default=50, help="IG steps in case 4")
    sizes.add_argument("--memory-steps", type=int, help="igkit's step count in case 5")
    sizes.add_argument("--captum-memory-probe", type=int,
                       help="Captum's smaller probe step count in case 5 (the slope is measured from it)")
    sizes.add_argument("--memory-cap-gib", type=float, default=10.0,
                       help="largest peak Captum may reach in case 5 (the machine is shared); beyond it the "
                            "peak is extrapolated along the measured per-step slope")
    args = p.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    for key, value in profile.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    return args


def _optional(case: str, run: Callable[[], list[Row]], rows: list[Row], skipped: list[Skipped]) -> None:
    """Run a case that needs a plugin, its model or a data set; a missing one becomes a skip line."""
    try:
        rows += run()
    except (ImportError, FileNotFoundError, ValueError) as exc:  # IGInputError is a ValueError
        skipped.append(Skipped(case, f"{type(exc).__name__}: {exc}"))


_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> tuple[list[Row], list[Skipped]]:
    rows: list[Row] = []
    skipped: list[Skipped] = []
    cases = set(args.cases)
    if cases & {"1", "2"}:
        from .googlenet import run_cases
        _log(f"cases 1-2: GoogLeNet {args.image_size}px, {args.steps} steps, {args.repeats} rounds")
        rows += [r for r in run_cases(args.steps, args.image_size, args.repeats) if r.case[0] in cases]
    if "3" in cases:
        rows += _trusted(args, skipped)
    if "4" in cases:
        _log(f"case 4: throughput, {args.molecules} molecules and {args.predictions} predictions")
        _optional("4 throughput (molecules)", lambda: _molecule_throughput(args), rows, skipped)
        _optional("4 throughput (text)", lambda: _text_throughput(args), rows, skipped)
    if "5" in cases:
        from .memory import run_case
        _log(f"case 5: memory, igkit at {args.memory_steps} steps, each run in a fresh process")
        steps = sorted({max(1, args.memory_steps // 6), args.memory_steps})
        rows += run_case(steps, args.captum_memory_probe, args.image_size, args.threads, args.memory_cap_gib)
    return rows, skipped


def _trusted(args: argparse.Namespace, skipped: list[Skipped]) -> list[Row]:
    from .convergence import run_case
    from .small_cnn import workload as cnn_workload

    _log(f"case 3: time to error ≤ {args.tolerance}, {args.trusted_examples} examples per model")
    workloads = [cnn_workload(args.trusted_examples, args.cnn_train_steps)]

    def molecule_workload():
        from igkit.plugins.molecules.checkpoint import load_model

        from .molecules import workload
        return workload(_require(args.data_dir / "benzene" / "benzene.csv"), load_model(args.molecule_model),
                        args.trusted_examples)

    def text_workload():
        from igkit.plugins.text.checkpoint import load_language_model

        from .text import workload
        return workload(_require(args.data_dir / "ptb"), load_language_model(args.text_model),
                        args.trusted_examples)

    def googlenet_workload():
        from .trusted_models import googlenet_workload
        return googlenet_workload(args.trusted_examples, args.trusted_image_size)

    def gpt2_workload():
        from .trusted_models import gpt2_workload
        return gpt2_workload(_require(args.data_dir / "ptb"), args.trusted_examples)

    for name, build in (("molecules", molecule_workload), ("text", text_workload),
                        ("GoogLeNet", googlenet_workload), ("small GPT-2", gpt2_workload)):
        found: list = []
        _optional(f"3 trusted answer ({name})", lambda: found.append(build()) or [], [], skipped)
        workloads += found
    return run_case(workloads, args.tolerance, args.max_steps, args.trusted_repeats)


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (give --data-dir)")
    return path


def _molecule_throughput(args: argparse.Namespace) -> list[Row]:
    from igkit.plugins.molecules.checkpoint import load_model

    from .molecules import run_throughput
    csv = _require(args.data_dir / "benzene" / "benzene.csv")
    return run_throughput(csv, load_model(args.molecule_model), args.molecules, args.throughput_steps)


def _text_throughput(args: argparse.Namespace) -> list[Row]:
    from igkit.plugins.text.checkpoint import load_language_model

    from .text import run_throughput
    return run_throughput(_require(args.data_dir / "ptb"), load_language_model(args.text_model),
                          args.predictions, args.throughput_steps)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows, skipped = run(args)
    elapsed = time.perf_counter() - start
    print(format_table(rows, skipped))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["command"] = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(args.json, rows, skipped, settings, elapsed)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_markdown(rows, skipped))
    cpu = machine()
    print(f"\n{len(rows)} ratios in {elapsed:.0f} s on {cpu['cpu']} ({cpu['nproc']} cores, torch "
          f"{cpu['torch']}, {args.threads} threads); JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
