"""A constant-time stand-in for the stream's table read, in front of moto.

`python -m bench.table_stand_in --port P --upstream <moto URL>` forwards every request to moto
unchanged, except the freshness read (``DynamoDB_20120810.BatchGetItem``): the first one of a
given body goes to moto, and its answer is replayed for every later request with the same body
(a benchmark's streams all read the same session and LLM). So the read costs the stream app what
it costs in AWS (one round trip on a kept-alive connection) and nothing of
moto's own speed: the capacity bench uses it to measure the app alone. Never for anything but
benchmarks: it would hide a revocation.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bench.loopback_relay import serve

_TARGET = "DynamoDB_20120810.BatchGetItem"
_HOP = {"host", "content-length", "transfer-encoding", "connection"}


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    answers: dict[bytes, tuple[int, bytes, str]] = {}

    async def start(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        read = request.headers.get("x-amz-target") == _TARGET
        if read and body in answers:
            status, text, content_type = answers[body]
            return web.Response(status=status, body=text, headers={"content-type": content_type})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with app["client"].request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as r:
            text = await r.read()
            content_type = r.headers.get("content-type", "application/x-amz-json-1.0")
            if read and r.status == 200:
                answers[body] = (r.status, text, content_type)
            return web.Response(status=r.status, body=text, headers={"content-type": content_type})

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> int:
    return serve("python -m bench.table_stand_in", __doc__, make_app, argv)


if __name__ == "__main__":
    raise SystemExit(main())
