"""The floor: a bare aiohttp pass-through, what any Python HTTP relay on this machine costs.

`python -m bench.passthrough --port P --upstream http://127.0.0.1:Q` forwards each
``POST /v1/chat/completions`` to the upstream (same body and headers) and streams the answer back
chunk by chunk: no token, no table read, no parsing, no checks. The benchmarks measure it next to
the gateway in the same run, so what the gateway adds above the HTTP stack itself is visible.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bench.loopback_relay import serve

_HOP = {"host", "content-length", "transfer-encoding", "connection"}


def make_app(upstream: str) -> web.Application:
    app = web.Application()

    async def start(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def stop(app: web.Application) -> None:
        await app["client"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with app["client"].post(
            f"{upstream}/v1/chat/completions", data=body, headers=headers
        ) as answer:
            response = web.StreamResponse(status=answer.status, headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", relay)
    app.router.add_get("/healthz", health)
    return app


def main(argv: list[str] | None = None) -> int:
    return serve("python -m bench.passthrough", __doc__, make_app, argv)


if __name__ == "__main__":
    raise SystemExit(main())
