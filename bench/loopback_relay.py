"""The command line the bench's own aiohttp relays share: ``--port`` on loopback, ``--upstream``
to forward to, served on uvloop as the stream app is."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from aiohttp import web


def serve(
    prog: str, description: str | None, make_app: Callable[[str], web.Application], argv: list[str] | None
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.install()
    web.run_app(
        make_app(args.upstream.rstrip("/")), host="127.0.0.1", port=args.port, print=None, access_log=None
    )
    return 0
