"""Session-token figures for BENCHMARKS.md: mint latency (in-process, moto) and verify cost.

Run: ``.venv/bin/python -m bench.tokens_bench [--mints 200] [--verifies 5000]``. Prints JSON.

- ``mint_handler_ms``: the session_tokens handler on events/session_tokens/mint_builtin.json, end
  to end in-process (body checks, pydantic, one DynamoDB PutItem, one KMS Sign) against moto
  in-process. moto's KMS signs locally, so this is our own overhead plus moto's; on AWS add one
  KMS Sign round trip (typically 5-15 ms in-region) and one PutItem (~5 ms).
- ``verify_offline_us``: ``TokenVerifier.verify`` (header allow-list, ES256 signature, claims).
- ``verify_stream_warm_us``: the stream verifier with the session record cached (the common case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 3),
        "mean": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


def run(mints: int, verifies: int) -> dict[str, Any]:
    from moto import mock_aws

    with mock_aws():
        from functions.session_tokens import handler
        from llm_gateway.adapters.aws import AwsClients
        from llm_gateway.adapters.session_state import DynamoSessionStateStore
        from llm_gateway.catalog import builtin_llms
        from llm_gateway.composition import SessionTokensServices, StreamServices
        from llm_gateway.domain.accounts import create_account
        from llm_gateway.observability import get_logger
        from llm_gateway_local.front_door import LambdaContext
        from llm_gateway_local.provision import provision
        from llm_gateway_local.template import (
            Resolver,
            function_environments,
            load_template,
            parameter_defaults,
        )
        from tests.conftest import load_event

        get_logger().setLevel("WARNING")  # the figures alone on stdout
        aws = AwsClients(region="us-east-1", access_key_id="bench", secret_access_key="bench")  # noqa: S106
        template = load_template()
        resolver = Resolver(parameter_defaults(template, {"Stage": "bench"}))
        provision(template, resolver, aws.client)
        environments = function_environments(template, resolver)
        quiet = {"POWERTOOLS_METRICS_DISABLED": "true"}
        tokens_services = handler.services.configure(environments["SessionTokensFunction"], aws)
        stream = StreamServices.from_environ(environments["StreamProxyFunction"] | quiet, aws)
        for builtin_id in builtin_llms():  # the platform keys a built-in's stream reads
            aws.secretsmanager().create_secret(
                Name=f"{stream.settings.platform_secret_prefix}{builtin_id}", SecretString="platform-key"
            )
        assert isinstance(tokens_services, SessionTokensServices)
        account = create_account(tokens_services.account_repository, "bench").account_id
        context = LambdaContext("session-tokens")

        def one_mint() -> dict[str, Any]:
            event = load_event("session_tokens/mint_builtin")
            event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
            return handler.lambda_handler(event, context)

        cold_start = time.perf_counter()
        first = one_mint()  # loads the public key (GetPublicKey) once
        cold_ms = (time.perf_counter() - cold_start) * 1000
        assert first["statusCode"] == 200, first
        mint_ms: list[float] = []
        tokens: list[str] = []
        for _ in range(mints):
            start = time.perf_counter()
            result = one_mint()
            mint_ms.append((time.perf_counter() - start) * 1000)
            tokens.append(json.loads(result["body"])["sessionToken"])

        from llm_gateway.domain.sessions import SessionAccess

        client = aws.dynamodb()

        async def batch_get(request: dict[str, Any]) -> dict[str, Any]:
            # moto's in-process mock intercepts botocore only (not the aiohttp path of a deployment).
            response: dict[str, Any] = await asyncio.to_thread(lambda: client.batch_get_item(**request))
            return response

        offline = stream.token_verifier
        access = SessionAccess(
            store=DynamoSessionStateStore(client, stream.settings.table_name, batch_get=batch_get),
            read_key=stream.stored_key,
            builtin_endpoint=stream.builtin_endpoint,
        )
        loop = asyncio.new_event_loop()

        def stream_session(t: str) -> None:
            """What a stream request does before its first byte: offline check, then the session
            from memory confirmed by one freshness read (or, cold, read whole)."""

            async def run() -> None:
                await access.settle(await access.begin(offline.verify(t)))

            loop.run_until_complete(run())

        token = tokens[-1]
        stream_session(token)  # in memory now
        offline_us: list[float] = []
        for _ in range(verifies):
            start = time.perf_counter()
            offline.verify(token)
            offline_us.append((time.perf_counter() - start) * 1e6)
        warm_us: list[float] = []
        for _ in range(200):
            start = time.perf_counter()
            stream_session(token)
            warm_us.append((time.perf_counter() - start) * 1e6)
        access.forget()
        cold_session_us: list[float] = []
        for t in tokens[:100]:
            start = time.perf_counter()
            stream_session(t)
            cold_session_us.append((time.perf_counter() - start) * 1e6)
        loop.close()

    return {
        "mint_handler_first_ms": round(cold_ms, 2),
        "mint_handler_ms": _percentiles(mint_ms),
        "verify_offline_us": _percentiles(offline_us),
        "stream_session_warm_us": _percentiles(warm_us),
        "stream_session_cold_us": _percentiles(cold_session_us),
        "token_bytes": len(token),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mints", type=int, default=200)
    parser.add_argument("--verifies", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(run(args.mints, args.verifies), indent=2))


if __name__ == "__main__":
    main()
