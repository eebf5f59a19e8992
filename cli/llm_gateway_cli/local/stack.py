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
from llm_gateway_cli.local.sqs_poller import SqsPoller
from llm_gateway_cli.local.template import (
    REGION,
    Resolver,
    api_routes,
    authorizer_function,
    function_environment,
    gateway_responses,
    load_template,
    parameter_defaults,
    queue_mappings,
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
            http="httptools", loop="uvloop",
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
        fake_url = self._start_fake_provider()
        os.environ["BUILTIN_BASE_URL"] = fake_url
        self._create_platform_secrets()

        from llm_gateway import composition

        composition.reset()
        front_door = self._front_door(template)
        http = ServerThread(front_door, self.port)
        api_port = http.start()
        self._stoppers.append(http.stop)
        api_url = f"http://127.0.0.1:{api_port}"
        self._start_pollers(template, resolver, front_door)

        from llm_gateway.domain.accounts import create_account

        demo = create_account(composition.account_repository(), "demo") if self.demo else None
        llms = register_demo_llms(demo.account_id, fake_url) if demo else {}
        self.state = {
            "apiUrl": api_url,
            "labUrl": f"{api_url}/lab/",
            "apiKey": demo.api_key if demo else None,
            "accountId": demo.account_id if demo else None,
            "awsEndpointUrl": aws_url,
            "fakeProviderUrl": fake_url,
            "llms": llms,
            "stage": LOCAL_STAGE,
            "tableName": os.environ["TABLE_NAME"],
            "region": REGION,
            "startupSeconds": round(time.monotonic() - started, 2),
        }
        if llms:
            wait_until_valid(demo.account_id if demo else "", llms, timeout_s=15)
        self.state["startupSeconds"] = round(time.monotonic() - started, 2)
        self.write_state()
        return self.state

    def write_state(self) -> None:
        """Atomically: whoever polls for the file (tests, scripts) never reads half of it."""
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".partial")
        partial.write_text(json.dumps(self.state, indent=2) + "\n", "utf-8")
        os.replace(partial, self.state_file)

    def _start_moto(self) -> str:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
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

    def _start_fake_provider(self) -> str:
        from llm_gateway_cli.fake_provider.server import start_in_thread

        handle = start_in_thread(port=0)
        self._stoppers.append(handle.stop)
        return handle.url

    def _create_platform_secrets(self) -> None:
        """Built-ins use platform keys; locally they are the fake provider's key."""
        from llm_gateway.catalog import builtin_llms
        from llm_gateway.settings import get_settings
        from llm_gateway_cli.fake_provider.config import DEFAULT_KEY

        sm = _client_factory()("secretsmanager")
        for builtin_id in builtin_llms():
            sm.create_secret(
                Name=f"{get_settings().platform_secret_prefix}{builtin_id}", SecretString=DEFAULT_KEY
            )

    def _start_pollers(self, template: dict[str, Any], resolver: Resolver, front_door: FrontDoor) -> None:
        sqs = _client_factory()("sqs")
        for mapping in queue_mappings(template):
            function = front_door.function(mapping.function, mapping.module, mapping.attribute)
            poller = SqsPoller(
                sqs,
                resolver.lookup(mapping.queue),
                resolver.lookup(f"{mapping.queue}.Arn"),
                function.invoke,
                mapping.batch_size,
                on_error=self.log,
            )
            poller.start()
            self._stoppers.append(poller.stop)

    def _front_door(self, template: dict[str, Any]) -> FrontDoor:
        auth = authorizer_function(template)
        authorizer = LocalFunction("authorizer", *auth) if auth else None
        routes = api_routes(template)
        # The stream app is served in this process, on this port: no extra HTTP hop.
        streaming = {r.path: _streaming_app(r.module) for r in routes if r.streaming}
        return FrontDoor(routes, authorizer, gateway_responses(template), LOCAL_STAGE, streaming)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the rest
                self.log(f"while stopping: {type(exc).__name__}")
        if self.state_file is not None and self.state_file.exists():
            self.state_file.unlink()


def _streaming_app(module: str) -> Any:
    """The ASGI ``app`` of a Web Adapter function (``functions.stream_proxy.app``)."""
    import importlib

    return importlib.import_module(module).app


def register_demo_llms(account_id: str, fake_url: str) -> dict[str, str]:
    """One demo LLM per spec, on the fake provider; the validator makes them valid on its own."""
    from pydantic import TypeAdapter

    from llm_gateway import composition
    from llm_gateway.models.llm import LlmCreate
    from llm_gateway_cli.fake_provider.config import DEFAULT_KEY

    bodies = {
        "openai": {"llmFormat": "openai", "modelName": "fake-model", "urls": [{"url": f"{fake_url}/v1/chat/completions"}]},
        "azure_openai": {"llmFormat": "azure_openai", "modelName": "fake-deployment", "urls": [{"url": f"{fake_url}/openai/v1"}]},
        "gemini": {"llmFormat": "gemini", "modelName": "gemini-2.5-flash", "urls": [{"url": fake_url}]},
    }  # fmt: skip
    adapter: TypeAdapter[Any] = TypeAdapter(LlmCreate)
    created = {}
    for name, body in bodies.items():
        request = adapter.validate_python({"displayName": f"Demo {name}", "secret": DEFAULT_KEY, **body})
        created[name] = composition.registry().create(account_id, request).id
    return created


def wait_until_valid(account_id: str, llms: dict[str, str], timeout_s: float) -> None:
    from llm_gateway import composition

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [composition.llm_repository().get(account_id, llm_id) for llm_id in llms.values()]
        if all(s is not None and s.status.value != "pending" for s in statuses):
            return
        time.sleep(0.1)


def _client_factory() -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session()
    return lambda service: session.client(service)  # type: ignore[call-overload]
