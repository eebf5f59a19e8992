"""``llm-gateway dev``: moto, the template's resources, the front door and demo data, on loopback.

Process layout, as in AWS: this process holds the front door, the handlers and the stream app
(what Lambda containers would run); moto and the fake provider are child processes
(``child.py``), started and stopped with the stack, their output in log files next to the
state file, so a benchmark of this process measures the gateway and nothing else.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_gateway_local.demo import register_demo_llms, wait_until_valid
from llm_gateway_local.front_door import FrontDoor, LocalFunction
from llm_gateway_local.provision import provision
from llm_gateway_local.servers import ChildServer, ServerThread, StackStartError, bind_loopback
from llm_gateway_local.sqs_poller import SqsPoller
from llm_gateway_local.template import (
    REGION,
    Resolver,
    api_routes,
    authorizer_function,
    function_environments,
    function_modules,
    gateway_response_headers,
    gateway_responses,
    load_template,
    method_not_allowed_responses,
    parameter_defaults,
    queue_mappings,
    repo_root,
    usage_plan_limits,
)
from llm_gateway_local.usage_plan import enroll, usage_plan_gate

if TYPE_CHECKING:
    from llm_gateway.adapters.aws import AwsClients

LOCAL_STAGE = "local"


#: Overrides the default state file (for scripts and tests that must not meet a developer's stack).
STATE_FILE_ENV = "LLM_GATEWAY_STATE_FILE"


def default_state_file() -> Path:
    override = os.environ.get(STATE_FILE_ENV)
    return Path(override) if override else repo_root() / ".local" / "state.json"


class StateFileInUse(StackStartError):
    def __init__(self, path: Path, api_url: str) -> None:
        super().__init__(
            f"another local stack ({api_url}) owns the state file {path}; stop it first, "
            f"or give this one its own file with --state-file PATH"
        )


@dataclass
class LocalStack:
    port: int = 0
    state_file: Path | None = None
    demo: bool = True
    log: Callable[[str], None] = print
    #: One line per API request (method, path, status, account, duration; TTFT for streams).
    request_log: Callable[[str], None] | None = None
    #: Origins besides the fake provider's that tenants' LLMs may use on private addresses
    #: (`--allow-endpoint`); the stack's own API and moto stay refused even when listed.
    allowed_endpoints: list[str] = field(default_factory=list)
    #: Re-validate every LLM this often (seconds; ``--revalidate-every``) instead of the template's 6 h;
    #: 0 runs no schedule at all (``off``: test stacks that count upstream requests).
    revalidate_every: float | None = None
    #: The stream app's traffic counters are written this often (seconds; ``--flush-traffic-every``).
    flush_traffic_every: float | None = None
    state: dict[str, Any] = field(default_factory=dict)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    _api_socket: socket.socket | None = None
    _wrote_state: bool = False
    _log_dir: Path | None = None
    _children: list[ChildServer] = field(default_factory=list)
    _reported_dead: set[str] = field(default_factory=set)
    #: moto's clients (its endpoint, region and fake credentials): the stack's and every function's.
    aws: AwsClients | None = None
    #: Each function's environment: the template's variables for it, plus the local ones it reads.
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self) -> dict[str, Any]:
        """Claim the port and the state file first: a second stack fails before touching anything."""
        from llm_gateway.adapters.aws import AwsClients
        from llm_gateway.composition import RegistryServices

        started = time.monotonic()
        self._api_socket = bind_loopback(self.port)
        self._claim_state_file()
        moto = self._start_child("moto", "/moto-api/")
        fake = self._start_child("fake-provider", "/_fake/health")
        aws_url, fake_url = moto.url, fake.url
        self.aws = aws = AwsClients.local(aws_url, REGION)
        template = load_template()
        resolver = Resolver(parameter_defaults(template, {"Stage": LOCAL_STAGE, "LogLevel": "WARNING"}))
        moto.wait_ready()
        provision(template, resolver, aws.client)
        self.environments = self._environments(template, resolver, fake_url, aws_url)
        _quiet_logs(self.environments)
        self._create_platform_secrets()
        fake.wait_ready()

        front_door = self._front_door(template, resolver)
        http = ServerThread(front_door, self.port, sock=self._api_socket)
        api_port = http.start()
        self._stoppers.append(http.stop)
        api_url = f"http://127.0.0.1:{api_port}"
        self._start_pollers(template, resolver, front_door)
        self._start_schedules(template, front_door)

        from llm_gateway.domain.accounts import create_account

        # The stack's own writes (the demo data) go through a registry of its own, like a container's.
        registry = RegistryServices.from_environ(self.environments["RegistryFunction"], aws)
        demo = create_account(registry.account_repository, "demo") if self.demo else None
        usage_plan_id = self._usage_plan_id(template, resolver)
        if demo and usage_plan_id:
            enroll(aws, registry.settings.table_name, demo.account_id, usage_plan_id)
        llms = register_demo_llms(registry, demo.account_id, fake_url) if demo else {}
        self.state = {
            "apiUrl": api_url,
            "labUrl": f"{api_url}/lab/",
            "apiKey": demo.api_key if demo else None,
            "accountId": demo.account_id if demo else None,
            "awsEndpointUrl": aws_url,
            "fakeProviderUrl": fake_url,
            "llms": llms,
            "stage": LOCAL_STAGE,
            "tableName": registry.settings.table_name,
            "usagePlanId": usage_plan_id,
            "region": REGION,
            "logs": {"moto": str(moto.log_file), "fakeProvider": str(fake.log_file)},
            "startupSeconds": round(time.monotonic() - started, 2),
        }
        if llms:
            wait_until_valid(registry, demo.account_id if demo else "", llms, timeout_s=15)
        self.state["startupSeconds"] = round(time.monotonic() - started, 2)
        gc.freeze()  # the stack's own setup, like each function's init (front_door.LocalFunction)
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
        self._wrote_state = True

    def _environments(
        self, template: dict[str, Any], resolver: Resolver, fake_url: str, aws_url: str
    ) -> dict[str, dict[str, str]]:
        """Each function's own environment, as the template gives it, plus the local variables that
        function's settings read (moto's endpoint, the private origins, the fake provider)."""
        from llm_gateway.settings import FUNCTION_SETTINGS

        local = {
            "AWS_ENDPOINT_URL": aws_url,
            "BUILTIN_BASE_URL": fake_url,
            "POWERTOOLS_METRICS_DISABLED": "true",
            **self._endpoint_settings(fake_url, aws_url),
        }
        if self.revalidate_every:
            local["REVALIDATION_INTERVAL_MINUTES"] = str(self.revalidate_every / 60)
        if self.flush_traffic_every:
            local["HEALTH_FLUSH_SECONDS"] = str(self.flush_traffic_every)
        # Request records show up within a second here (a deployment writes them every 10 s).
        local["REQUEST_LOG_FLUSH_SECONDS"] = "1"
        out = {}
        for logical, env in function_environments(template, resolver).items():
            model = FUNCTION_SETTINGS.get(logical)
            reads = model.variables() if model is not None else frozenset()
            out[logical] = env | {k: v for k, v in local.items() if k in reads or k.startswith("POWERTOOLS_")}
        return out

    def _endpoint_settings(self, fake_url: str, aws_url: str) -> dict[str, str]:
        """Which private endpoints tenants may use (the fake provider's, plus `--allow-endpoint`),
        and the stack's own origin, which no LLM may point at (it would call itself)."""
        assert self._api_socket is not None
        own = f"http://127.0.0.1:{self._api_socket.getsockname()[1]}"
        refused = {own.rsplit(":", 1)[1], aws_url.rsplit(":", 1)[1]}
        for origin in self.allowed_endpoints:
            if origin.rstrip("/").rsplit(":", 1)[-1] in refused:
                self.log(
                    f"--allow-endpoint {origin}: refused all the same, it is this stack's own API or moto"
                )
        return {
            "PRIVATE_ENDPOINT_ORIGINS": ",".join([fake_url, *self.allowed_endpoints]),
            "GATEWAY_ORIGINS": f"{own},http://localhost:{own.rsplit(':', 1)[1]}",
        }

    def dead_child(self) -> str | None:
        """Why the stack cannot serve: a child server that exited (moto is every function's AWS)
        makes every request a 503 naming it and its log, said once in the terminal too."""
        for child in self._children:
            if child.proc is None or child.proc.poll() is None:
                continue
            reason = (
                f"the local stack's {child.server} process exited (code {child.proc.returncode}); "
                f"see {child.log_file}, then stop and restart `llm-gateway dev`"
            )
            if child.server not in self._reported_dead:
                self._reported_dead.add(child.server)
                self.log(reason)
            return reason
        return None

    def _claim_state_file(self) -> None:
        """Refuse a state file that a running stack still answers for; a stale one is overwritten."""
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            api_url = str(json.loads(self.state_file.read_text("utf-8")).get("apiUrl") or "")
        except (OSError, ValueError, AttributeError):
            return
        if api_url and _answers(api_url):
            raise StateFileInUse(self.state_file, api_url)

    def _start_child(self, server: str, health_path: str) -> ChildServer:
        child = ChildServer(server, self._log_file(server), health_path)
        self._stoppers.append(child.stop)
        self._children.append(child)
        child.start()
        return child

    def _log_file(self, server: str) -> Path:
        """``<state file stem>.<server>.log`` beside the state file (a temporary folder without one)."""
        if self.state_file is not None:
            return self.state_file.with_name(f"{self.state_file.stem}.{server}.log")
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="llm-gateway-dev-"))
        return self._log_dir / f"{server}.log"

    def _create_platform_secrets(self) -> None:
        """Built-ins use platform keys; locally they are the fake provider's key."""
        from llm_gateway.catalog import builtin_llms
        from llm_gateway.settings import StreamSettings
        from llm_gateway_fake_provider.config import DEFAULT_KEY

        assert self.aws is not None
        prefix = StreamSettings.from_environ(self.environments["StreamProxyFunction"]).platform_secret_prefix
        sm = self.aws.secretsmanager()
        for builtin_id in builtin_llms():
            sm.create_secret(Name=f"{prefix}{builtin_id}", SecretString=DEFAULT_KEY)

    def _start_pollers(self, template: dict[str, Any], resolver: Resolver, front_door: FrontDoor) -> None:
        from llm_gateway.adapters.aws import AwsClients

        assert self.aws is not None and self.aws.endpoint_url is not None
        # Long polls (20 s) outlast the functions' 10 s read timeout: the pollers' own client.
        sqs = AwsClients.local(self.aws.endpoint_url, REGION, read_timeout=60).sqs()
        for mapping in queue_mappings(template):
            function = front_door.function(mapping.function, mapping.module, mapping.attribute)
            # As Lambda's pollers: up to MaximumConcurrency invocations of the function at once.
            pollers = [
                SqsPoller(
                    sqs,
                    resolver.lookup(mapping.queue),
                    resolver.lookup(f"{mapping.queue}.Arn"),
                    function.invoke,
                    mapping.batch_size,
                    on_error=self.log,
                )
                for _ in range(max(1, int(resolver.resolve(mapping.max_concurrency))))
            ]
            for poller in pollers:
                poller.start()
            self._stoppers.append(functools.partial(stop_all, pollers))

    def _start_schedules(self, template: dict[str, Any], front_door: FrontDoor) -> None:
        """The template's schedules as timers; ``--revalidate-every`` shortens the period."""
        from llm_gateway_local.schedules import LocalSchedule, schedule_targets

        if self.revalidate_every == 0:
            return
        for target in schedule_targets(template):
            function = front_door.function(target.function, target.module, target.attribute)
            period = min(self.revalidate_every, target.period_s) if self.revalidate_every else None
            schedule = LocalSchedule(target, function.invoke, period_s=period, on_error=self.log)
            schedule.start()
            self._stoppers.append(schedule.stop)

    @staticmethod
    def _usage_plan_id(template: dict[str, Any], resolver: Resolver) -> str | None:
        limits = usage_plan_limits(template, resolver)
        return resolver.lookup(limits.logical_id) if limits else None

    def _front_door(self, template: dict[str, Any], resolver: Resolver) -> FrontDoor:
        auth = authorizer_function(template)
        modules = function_modules(template)
        authorizer = None
        if auth:
            logical = next(name for name, module in modules.items() if module == auth[0])
            authorizer = LocalFunction(logical, *auth, self.environments.get(logical), self.aws)
        routes = api_routes(template)
        # The stream app is served in this process, on this port: no extra HTTP hop.
        streaming = {r.path: self._streaming_app(r.function, r.module) for r in routes if r.streaming}
        runtimes = [app.state.runtime for app in streaming.values()]
        return FrontDoor(
            routes,
            authorizer,
            gateway_responses(template),
            LOCAL_STAGE,
            streaming,
            method_responses=method_not_allowed_responses(template),
            request_log=self.request_log,
            on_shutdown=[runtime.shutdown for runtime in runtimes],
            on_startup=[runtime.warm_up for runtime in runtimes],
            usage_plan=usage_plan_gate(template, resolver, self.aws),
            response_headers=gateway_response_headers(template),
            environments=self.environments,
            aws=self.aws,
            unavailable=self.dead_child,
        )

    def _streaming_app(self, function: str, module: str) -> Any:
        """The ASGI app of a Web Adapter function (``functions.stream_proxy.app:create_app``), with
        services built from that function's environment."""
        import importlib

        from llm_gateway.composition import StreamServices

        services = StreamServices.from_environ(self.environments[function], self.aws)
        return importlib.import_module(module).create_app(services)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the rest
                self.log(f"while stopping: {type(exc).__name__}")
        if self._api_socket is not None:
            self._api_socket.close()
        self._remove_own_state_file()

    def _remove_own_state_file(self) -> None:
        """Only the file this stack wrote, and only while it still describes this stack."""
        if not self._wrote_state or self.state_file is None:
            return
        try:
            on_disk = json.loads(self.state_file.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(on_disk, dict) and on_disk.get("apiUrl") == self.state.get("apiUrl"):
            self.state_file.unlink(missing_ok=True)


def stop_all(pollers: list[SqsPoller]) -> None:
    """Ask every poller to stop first, then wait half a second for all of them together (a long
    poll in flight ends when moto stops: the threads are daemons)."""
    for poller in pollers:
        poller.request_stop()
    deadline = time.monotonic() + 0.5
    for poller in pollers:
        poller.stop(timeout_s=max(0.0, deadline - time.monotonic()))


def _answers(api_url: str) -> bool:
    """Whether something listens at the URL's loopback port (a live stack, not a stale file)."""
    from urllib.parse import urlsplit

    parts = urlsplit(api_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return False
    try:
        with socket.create_connection(("127.0.0.1", parts.port), timeout=0.5):
            return True
    except OSError:
        return False


def _quiet_logs(environments: dict[str, dict[str, str]]) -> None:
    """The functions' log level as the template sets it (the stack runs them all in this process)."""
    from llm_gateway.observability import get_logger

    levels = {env.get("POWERTOOLS_LOG_LEVEL") for env in environments.values()} - {None}
    if len(levels) == 1:
        get_logger().setLevel(str(levels.pop()))
