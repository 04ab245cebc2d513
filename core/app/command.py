"""``igkit app``: start the web app (needs the optional extra ``igkit[app]``)."""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time

from ..errors import IGInputError, IgkitError

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


def run_app(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise AppMissing("the web app needs Gradio: pip install 'igkit[app]' (or pip install 'gradio>=6,<7')")
    start = time.perf_counter()
    from .server import build_app, launch, make_services, prepare_environment, work_root

    root = work_root()
    prepare_environment(root)
    names = [n.strip() for n in args.domains.split(",") if n.strip()]
    services = make_services(root, names or None, parse_models(args.model))
    demo = build_app(services)
    _, url, _ = launch(demo, args.host, args.port or None, block=False, quiet=True)
    print(f"igkit app: {len(services)} tab(s) ({', '.join(s.domain.name for s in services)}) at {url} "
          f"(started in {time.perf_counter() - start:.1f} s; Ctrl-C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"igkit app: listening on {args.host}: anyone who can reach this machine can use the app",
              file=sys.stderr)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
