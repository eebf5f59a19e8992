"""``python -m llm_gateway_local.child {moto,fake-provider}``: a server of ``llm-gateway dev``.

The local stack runs moto and the fake provider as child processes, so its own process holds only
what a Lambda container would (the front door, the handlers, the stream app) and measures only
that. The parent binds each listening socket and hands it down (``--fd``): the port is known at
once and connections wait in the backlog until the child accepts them. A child never outlives its
parent: Linux delivers SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), and a watchdog thread
catches the rest (a parent gone before that was set, or another system).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def _die_with(parent_pid: int) -> None:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watchdog() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)  # everything lives in memory: nothing to save

    if os.getppid() != parent_pid:  # the parent went before the signal was armed
        raise SystemExit(0)
    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def _serve_moto(sock: socket.socket, workers: int) -> None:
    import uvicorn
    from a2wsgi import WSGIMiddleware
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from llm_gateway_local.moto_reads import AtomicDynamoWrites, FreshnessReads

    app = AtomicDynamoWrites(DomainDispatcherApplication(create_backend_app))
    # moto is a WSGI app; uvicorn keeps connections alive (werkzeug's server closes every one).
    # Workers: SQS long polls hold one each for up to 20 s.
    config = uvicorn.Config(
        FreshnessReads(WSGIMiddleware(app, workers=workers)),  # type: ignore[arg-type]
        log_level="warning", access_log=False, lifespan="off", http="httptools", loop="uvloop",
        timeout_keep_alive=75, timeout_graceful_shutdown=0,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


def _serve_fake_provider(sock: socket.socket) -> None:
    from llm_gateway_fake_provider.server import serve_socket

    serve_socket(sock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_gateway_local.child")
    parser.add_argument("server", choices=["moto", "fake-provider"])
    parser.add_argument("--fd", type=int, required=True, help="a listening socket inherited from the parent")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args(argv)
    _die_with(args.parent_pid)
    sock = socket.socket(fileno=args.fd)
    print(f"{args.server} serving on 127.0.0.1:{sock.getsockname()[1]} (pid {os.getpid()})", flush=True)
    if args.server == "moto":
        _serve_moto(sock, args.workers)
    else:
        _serve_fake_provider(sock)
    # Stopped (SIGTERM from the stack, Ctrl-C, or the parent's death): leave now, without waiting
    # for worker threads parked in a long poll.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
