"""The LLM config flags that ``llms create``, ``update`` and ``test`` share, and the request body
they make (only what was given, so it doubles as a PUT patch)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

LLM_API_KEY_ENV = "LLM_API_KEY"
FORMATS = ("openai", "azure_openai", "gemini", "anthropic", "groq_openai")
REASONING_EFFORTS = ("default", "low", "medium", "high")
REASONING_FORMATS = ("hidden", "parsed", "raw")


class ConfigUsageError(Exception):
    """A flag combination the gateway would refuse anyway: a usage error (exit 2), said at once."""


def config_arguments(parser: Any, *, required: bool) -> None:
    """The LLM config flags shared by create, test (required ones) and update (all optional)."""
    parser.add_argument("--format", required=required, choices=FORMATS, dest="llm_format")
    parser.add_argument("--name", required=required, help="display name")
    parser.add_argument(
        "--url",
        action="append",
        dest="urls",
        required=required,
        metavar="URL",
        help="endpoint URL; repeat for failover (1-5)" + ("" if required else "; replaces the list"),
    )
    parser.add_argument("--model", required=required, help="model name (Azure v1: the deployment name)")
    key_help = "the endpoint's API key" + (f" (default: ${LLM_API_KEY_ENV})" if required else " (a new key)")
    parser.add_argument("--api-key", dest="llm_api_key", metavar="KEY", help=key_help)
    parser.add_argument("--deployment", help="Azure deployment name (classic resource-endpoint URLs)")
    parser.add_argument("--api-version", help="Azure api-version, e.g. 2024-10-21 (classic URLs)")
    parser.add_argument("--temperature", type=float, metavar="T")
    parser.add_argument("--max-tokens", type=int, metavar="N")
    parser.add_argument(
        "--reasoning-effort",
        choices=REASONING_EFFORTS,
        help="how hard a reasoning model thinks (default: unset)",
    )
    parser.add_argument(
        "--reasoning-format",
        choices=REASONING_FORMATS,
        help="what clients get of its thoughts: hidden (the default), parsed (reasoning_content) or raw",
    )
    parser.add_argument(
        "--header",
        action="append",
        dest="headers",
        metavar="'NAME: VALUE'",
        help="extra non-auth header sent upstream; repeatable" + ("" if required else "; replaces them all"),
    )
    parser.add_argument("--description", metavar="TEXT")


def config_body(
    args: argparse.Namespace, *, creating: bool, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The camelCase body from the flags; only what was given (so it doubles as a PUT patch)."""
    body: dict[str, Any] = {}
    if args.name is not None:
        body["displayName"] = args.name
    if args.description is not None:
        body["description"] = args.description
    if args.llm_format is not None:
        body["llmFormat"] = args.llm_format
    if args.urls:
        body["urls"] = [{"url": url} for url in args.urls]
    if args.model is not None:
        body["modelName"] = args.model
    if args.deployment is not None:
        body["deploymentName"] = args.deployment
    if args.api_version is not None:
        body["apiVersion"] = args.api_version
    if args.temperature is not None:
        body["temperature"] = args.temperature
    if args.max_tokens is not None:
        body["maxTokens"] = args.max_tokens
    if args.reasoning_effort is not None:
        body["reasoningEffort"] = args.reasoning_effort
    if args.reasoning_format is not None:
        body["reasoningFormat"] = args.reasoning_format
    if args.headers:
        body["headers"] = parse_headers(args.headers)
    if (
        args.llm_format is not None
        and args.llm_format != "azure_openai"
        and (args.deployment or args.api_version)
    ):
        raise ConfigUsageError("--deployment and --api-version apply to --format azure_openai only")
    env = os.environ if environ is None else environ  # the user's environment, unless given
    secret = args.llm_api_key or (env.get(LLM_API_KEY_ENV) if creating else None)
    if creating and not secret:
        raise ConfigUsageError(f"no API key for the endpoint: pass --api-key KEY or set {LLM_API_KEY_ENV}")
    if secret is not None:
        if not secret or any(ch.isspace() for ch in secret):
            raise ConfigUsageError("the API key must be non-empty and contain no whitespace")
        body["secret"] = secret
    return body


def parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip() or any(ch.isspace() for ch in name.strip()):
            raise ConfigUsageError("--header takes 'Name: value': a header name, a colon, the value")
        headers[name.strip()] = rest.strip()
    return headers
