"""Command-line pieces every domain shares: the explain command, integration and run options.

``igkit <domain> explain`` and ``igkit explain --domain <domain>`` are built here from
the domain contract, so both have the same options, defaults and files. Plugins build
their other commands (train, evaluate, ...) with :func:`add_domain_group` and
:func:`add_integration_arguments`.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from igkit.attribution.quadrature import RULES
from igkit.domain import Domain
from igkit.options import FEATURE_TOLERANCE_FACTOR, PLANS, Integration

#: the most torch threads used unless --threads says otherwise: on machines shared with other
#: work more threads spin against each other (measured 6-23x slower at torch's default)
DEFAULT_MAX_THREADS = 4


def default_threads() -> int:
    """``$IGKIT_THREADS``, else the cores this process may use, at most :data:`DEFAULT_MAX_THREADS`."""
    if os.environ.get("IGKIT_THREADS", "").isdigit() and int(os.environ["IGKIT_THREADS"]) > 0:
        return int(os.environ["IGKIT_THREADS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(DEFAULT_MAX_THREADS, cores))


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def add_integration_arguments(parser: argparse.ArgumentParser, defaults: Integration) -> None:
    """``--steps/--method/--tolerance/--max-steps/--batch-size`` with the domain's defaults."""
    g = parser.add_argument_group("integration")
    g.add_argument("--steps", type=positive_int, default=defaults.steps,
                   help="path points of a fixed --method rule; without it integration is adaptive "
                        "(see --tolerance)")
    g.add_argument("--method", choices=RULES, default=defaults.method, help="quadrature rule used with --steps")
    g.add_argument("--tolerance", type=positive_float, default=defaults.tolerance,
                   help="adaptive: refine the path until the completeness error is at most this share of "
                        "|F(x) - F(baseline)| (or of the absolute floor where that difference is tiny)")
    g.add_argument("--feature-tolerance", type=positive_float, default=defaults.feature_tolerance,
                   help="adaptive: also refine until the estimated per-feature error (relative L2 of the "
                        f"attributions) is at most this (default: {FEATURE_TOLERANCE_FACTOR:g} x --tolerance; "
                        "completeness alone bounds only their sum)")
    g.add_argument("--max-steps", type=positive_int, default=defaults.max_steps,
                   help="adaptive: cap on path points per item")
    g.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                   help="path points per forward/backward pass (bounds memory; default: the domain's "
                        "choice)")
    g.add_argument("--plan", choices=PLANS, default=defaults.plan,
                   help="adaptive: forward plans the grid from F on 17 points (forward passes only), then "
                        "runs one gradient pass; off refines from 5 points, one pass per round; auto plans "
                        "for recurrent models (LSTM, GRU), where a pass costs far more than its points, and "
                        "otherwise sizes the first grid by the input (9 points for small inputs, no "
                        "gradients at the path's ends for very large ones)")


def integration_options(args: argparse.Namespace) -> dict[str, Any]:
    """The integration options of :func:`add_integration_arguments`, as keywords of
    :func:`igkit.api.run_options`."""
    return {"steps": args.steps, "method": args.method, "tolerance": args.tolerance,
            "feature_tolerance": args.feature_tolerance, "max_steps": args.max_steps,
            "batch_size": args.batch_size, "plan": args.plan}


def integration_from_args(args: argparse.Namespace, defaults: Integration) -> Integration:
    """``defaults`` with the integration options given, checked as :func:`igkit.api.run_options` checks
    them (for commands that integrate outside a run, e.g. scoring)."""
    return defaults.with_overrides(**integration_options(args)).validated()


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads``, ``--quiet`` and ``--debug``: every igkit command has them."""
    g = parser.add_argument_group("run")
    g.add_argument("--threads", type=positive_int, default=default_threads(),
                   help="torch threads (env IGKIT_THREADS; use 1 on a machine shared with other work)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")


def add_domain_group(subparsers: argparse._SubParsersAction, domain: Domain, help: str
                     ) -> argparse._SubParsersAction:
    """``igkit <domain> ...`` with its ``explain`` command; returns the group's subparsers."""
    group = subparsers.add_parser(domain.name, help=help, description=domain.description)
    commands = group.add_subparsers(dest=f"{domain.name}_command", metavar="COMMAND", required=True)
    add_explain_command(commands, domain)
    return commands


def add_explain_command(subparsers: argparse._SubParsersAction, domain: Domain, name: str = "explain"
                        ) -> argparse.ArgumentParser:
    """The explain command of ``domain``: its items and options, then the options all domains share."""
    p = subparsers.add_parser(name, help=f"attribute {domain.name} predictions; one folder per item",
                              description=f"{domain.description}. Writes OUT/<item>-<hash>/ per item, "
                                          f"report.json and run.json (see README 'Run contract').",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("items", nargs="*", help=domain.items_help)
    p.add_argument("--out", required=True, help="output folder (created; rerunning resumes)")
    p.add_argument("--model", default=None, help="model the domain loads (default: its own)")
    domain.add_arguments(p)
    p.add_argument("--methods", default="", help="other attribution methods computed beside integrated "
                                                 "gradients, comma-separated (see `igkit methods`)")
    p.add_argument("--no-pictures", action="store_true", help="tables only (faster for many items)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of a different earlier run in --out")
    add_integration_arguments(p, domain.integration)
    p.add_argument("--require-converged", action="store_true",
                   help="exit 1 when any item's completeness check did not converge (the last line names "
                        "them); default: such items are named but the exit code stays 0")
    # every engine runs through the one driver (core/run/run_folder.py, core/run/engines/, docs/ray.md)
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "process", "ray"), default="local",
                   help="local: this process; process: --workers processes on this machine; ray: Ray "
                        "actors (needs pip install 'igkit[ray]'); each worker loads the model once and "
                        "writes the same item folders")
    g.add_argument("--format", choices=("folders", "parquet"), default="folders", dest="output_format",
                   help="parquet: also OUT/items/ (one row per item) and OUT/units/ (one row per atom, "
                        "word or image patch), readable with pandas.read_parquet (needs pyarrow)")
    g.add_argument("--ray-address", default=None,
                   help="with --engine ray: the cluster to join (auto: the one `ray start` joined on this "
                        "node; or HEAD:6379); --out must then be on storage every node shares; "
                        "default: start a local one")
    g.add_argument("--workers", type=positive_int, default=2,
                   help="with --engine process or ray: model workers (each uses --threads torch threads; "
                        "on Ray it reserves that many CPUs)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="with --engine ray: GPUs each actor reserves (0: CPU only; 0.5: two per GPU)")
    add_run_arguments(p)
    p.set_defaults(func=lambda args: run_explain(domain, args))
    return p


def run_explain(domain: Domain, args: argparse.Namespace) -> int:
    """Run an explain command: the one path, the CLI's printing; returns the exit code."""
    from igkit.api import run_options
    from igkit.run.run_folder import run_to_folder

    settings = domain.settings(args)
    options = run_options(domain, args.methods.split(","), **integration_options(args))
    from igkit.run.engines import get_engine

    engine = {"local": lambda: get_engine("local"),
              "process": lambda: get_engine("process", workers=args.workers, threads=args.threads),
              "ray": lambda: get_engine("ray", address=args.ray_address, workers=args.workers,
                                        gpus_per_worker=args.gpus_per_worker, threads=args.threads)
              }[args.engine]()
    items = domain.read_items(domain.sources(args), **settings)
    model = domain.load_model(args.model, **settings)
    report = run_to_folder(domain, model, items, args.out, settings=settings, options=options,
                           model_source=args.model, pictures=not args.no_pictures,
                           overwrite=args.overwrite, show_progress=not args.quiet, engine=engine,
                           output_format=args.output_format, inputs=domain.sources(args))
    counts = report.counts()
    verdict = RunVerdict.of(report.folders)
    verdict.warn_flat()
    print(f"{domain.name}: {counts['written']} written, {counts['kept']} kept from an earlier run, "
          f"{counts['duplicate']} duplicate(s), {counts['skipped']} skipped, in {args.out}"
          f"{verdict.tail()}")
    if args.require_converged and verdict.unconverged.count:
        return max(report.exit_code, 1)
    return report.exit_code


@dataclass
class _Names:
    """How many items, and the first few by id (a run's last line names them, not all of them)."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, summary: dict[str, Any], limit: int = 10) -> None:
        from igkit.outputs.printable import printable

        self.count += 1
        if len(self.first) < limit:
            self.first.append(printable(summary.get("item", {}).get("name", "?"), 40))

    def __str__(self) -> str:
        more = self.count - len(self.first)
        return ", ".join(self.first) + (f" and {more} more" if more else "")


@dataclass
class RunVerdict:
    """What a run's last line says, gathered one item summary at a time (a run may have millions)."""

    worst: dict[str, Any] | None = None
    unconverged: _Names = field(default_factory=_Names)
    flat: _Names = field(default_factory=_Names)

    @classmethod
    def of(cls, folders: Iterable[Path]) -> "RunVerdict":
        from igkit.io.records import read_json

        verdict = cls()
        for folder in folders:
            verdict.add(read_json(folder / "summary.json"))
        return verdict

    def add(self, summary: dict[str, Any]) -> None:
        if self.worst is None or summary["completeness_error"] > self.worst["completeness_error"]:
            self.worst = summary
        if summary.get("converged") is False:
            self.unconverged.add(summary)
        if summary.get("explains", {}).get("flat"):
            self.flat.add(summary)

    def tail(self) -> str:
        """The end of the last line: the worst completeness error and which items did not
        converge, by id (one meaning of converged: relative tolerance or absolute floor)."""
        worst = self.worst
        if worst is None:
            return ""
        worst_name = _Names()
        worst_name.add(worst)
        tail = f"; worst completeness error {worst['completeness_error']:.3%} ({worst_name}"
        if worst.get("converged_by") == "absolute floor":
            tail += ", converged by the absolute floor: F(input) − F(baseline) is tiny)"
        elif worst.get("converged") is None:
            tail += ", a fixed --steps rule: no tolerance was asked, so convergence is not judged)"
        else:
            tail += ")"
        if self.unconverged.count:
            tail += (f"; NOT converged: {self.unconverged} (raise --max-steps; --require-converged "
                     f"makes this exit 1)")
        return tail

    def warn_flat(self) -> None:
        import warnings

        from igkit.errors import IgkitWarning

        if self.flat.count:
            warnings.warn(f"F(input) ≈ F(baseline) for {self.flat}: there is nothing to attribute, "
                          f"the attributions sum to about 0 and their colours show noise; try another "
                          f"baseline or target", IgkitWarning, stacklevel=2)


def set_threads(threads: int) -> None:
    """Torch threads for this command, without importing torch for commands that never compute."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:  # read by torch when it is first imported
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
