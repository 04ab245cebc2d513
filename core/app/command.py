"""``igkit app``: start the web app (needs the optional extra ``igkit[app]``)."""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import signal
import sys
import time
from pathlib import Path

from igkit.errors import IGInputError, IgkitError

DEFAULT_PORT = 7860


def add_app_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``igkit app`` (Gradio is imported only when it runs)."""
    p = subparsers.add_parser("app", help="explore attributions in the browser (needs igkit[app])",
                              description="A local web app with one tab per installed domain; it runs "
                                          "the same explain path as `igkit <domain> explain`.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the app to your network")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: a free port)")
    p.add_argument("--model", action="append", default=[], metavar="DOMAIN=SOURCE",
                   help="a model a tab offers, as the domain's --model takes it (repeat for more; "
                        "none: each domain's own)")
    p.add_argument("--domains", default="", help="comma-separated domains to show (empty: every installed domain)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="longest a request may work before it is stopped with a message (None: 120 s); "
                        "people may lower it per request in the page, never raise it")
    p.set_defaults(func=run_app)
    return p


def parse_models(specs: list[str]) -> dict[str, list[str]]:
    models: dict[str, list[str]] = {}
    for spec in specs:
        domain, sep, source = spec.partition("=")
        if not sep or not domain.strip() or not source.strip():
            raise IGInputError(f"--model {spec!r}: write DOMAIN=SOURCE, e.g. vision=random")
        models.setdefault(domain.strip(), []).append(source.strip())
    return models


class AppMissing(IgkitError):
    """Gradio (the optional extra) is not installed."""


def stop_on_signals() -> None:
    """SIGTERM (``kill``, a service manager) stops the app like Ctrl-C, so the cleanup below runs
    instead of the process dying with its temporary files left behind."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def run_app(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise AppMissing("the web app needs Gradio: pip install 'igkit[app]' (or pip install 'gradio>=6,<7')")
    from igkit.app.budget import DEFAULT_BUDGET_S

    budget = DEFAULT_BUDGET_S if args.time_budget is None else args.time_budget
    if not budget > 0:
        raise IGInputError(f"--time-budget must be a positive number of seconds, got {args.time_budget}")
    start = time.perf_counter()
    from igkit.app.server import build_app, launch, make_services, prepare_environment, work_root

    root = work_root()
    stop_on_signals()
    demo = None
    try:
        prepare_environment(root)
        names = [n.strip() for n in args.domains.split(",") if n.strip()]
        services = make_services(root, names or None, parse_models(args.model), budget)
        demo = build_app(services)
        _, url, _ = launch(demo, args.host, args.port or None, block=False, quiet=True)
        print(f"igkit app: {len(services)} tab(s) ({', '.join(s.domain.name for s in services)}) at {url} "
              f"(started in {time.perf_counter() - start:.1f} s; Ctrl-C stops; temporary files in {root}, "
              f"removed when it stops)", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"igkit app: listening on {args.host}: anyone who can reach this machine can use the app",
                  file=sys.stderr)
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        if demo is not None:
            demo.close()
        remove_work_root(root)
    print("igkit app: stopped; temporary files removed", flush=True)
    return 0


def remove_work_root(root: Path) -> None:
    """Delete the app's temporary folder (uploads, results); a second signal cannot cut it short."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        shutil.rmtree(root, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
