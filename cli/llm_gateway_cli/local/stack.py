"""``llm-gateway dev``: moto, the template's resources, the front door and demo data, on loopback."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_gateway_cli.local.front_door import FrontDoor, LocalFunction
from llm_gateway_cli.local.provision import provision
from llm_gateway_cli.local.template import (
    REGION,
    Resolver,
    api_routes,
    authorizer_function,
    function_environment,
    gateway_responses,
    load_template,
    parameter_defaults,
    repo_root,
)

LOCAL_STAGE = "local"


def default_state_file() -> Path:
    return repo_root() / ".local" / "state.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass
class ServerThread:
    """A uvicorn server on a socket we bound (so ``--port 0`` works), in a daemon thread."""

    app: Any
    port: int
    server: Any = None
    thread: threading.Thread | None = None
    sock: socket.socket | None = None

    def start(self) -> int:
        import uvicorn

        self.sock = _bind(self.port)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=75,
            http="h11",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return int(self.sock.getsockname()[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()


@dataclass
class LocalStack:
    port: int = 0
    state_file: Path | None = None
    demo: bool = True
    log: Callable[[str], None] = print
    state: dict[str, Any] = field(default_factory=dict)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> dict[str, Any]:
        started = time.monotonic()
        aws_url = self._start_moto()
        template = load_template()
        resolver = Resolver(parameter_defaults(template, {"Stage": LOCAL_STAGE, "LogLevel": "WARNING"}))
        provision(template, resolver, _client_factory())
        os.environ.update(function_environment(template, resolver))
        os.environ["ALLOW_PRIVATE_ENDPOINTS"] = "true"  # the fake provider lives on loopback

        from llm_gateway import composition

        composition.reset()
        front_door = self._front_door(template)
        http = ServerThread(front_door, self.port)
        api_port = http.start()
        self._stoppers.append(http.stop)
        api_url = f"http://127.0.0.1:{api_port}"

        from llm_gateway.domain.accounts import create_account

        demo = create_account(composition.account_repository(), "demo") if self.demo else None
        self.state = {
            "apiUrl": api_url,
            "apiKey": demo.api_key if demo else None,
            "accountId": demo.account_id if demo else None,
            "awsEndpointUrl": aws_url,
            "fakeProviderUrl": None,
            "llms": {},
            "stage": LOCAL_STAGE,
            "tableName": os.environ["TABLE_NAME"],
            "region": REGION,
            "startupSeconds": round(time.monotonic() - started, 2),
        }
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(self.state, indent=2) + "\n", "utf-8")
        return self.state

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer

        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        self._stoppers.append(server.stop)
        url = f"http://127.0.0.1:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        return url

    def _front_door(self, template: dict[str, Any]) -> FrontDoor:
        auth = authorizer_function(template)
        authorizer = LocalFunction("authorizer", *auth) if auth else None
        return FrontDoor(api_routes(template), authorizer, gateway_responses(template), LOCAL_STAGE)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the rest
                self.log(f"while stopping: {type(exc).__name__}")
        if self.state_file is not None and self.state_file.exists():
            self.state_file.unlink()


def _client_factory() -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session()
    return lambda service: session.client(service)  # type: ignore[call-overload]
