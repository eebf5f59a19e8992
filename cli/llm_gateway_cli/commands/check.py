"""``llm-gateway check``: run the conformance suite against any endpoint, no gateway needed.

The same engine as the service (``llm_gateway.domain.conformance``) over the same guarded HTTP
client, so what a developer sees here is what validation will say after registration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Mapping
from typing import Any, TextIO

USAGE_ERROR = 2
NOT_COMPATIBLE = 1
API_KEY_ENV = "LLM_API_KEY"

_DESCRIPTION = """\
Run the conformance suite against an LLM endpoint: a real streaming request (max_tokens 16;
2048 with --reasoning-effort, so a reasoning model can think and still answer),
judged on the raw HTTP bytes, plus a request with a wrong key. Prints every check, a hint under
each failure, the timings and a verdict.

--url takes the URL as the provider documents it:
  openai        the full chat-completions URL        https://api.openai.com/v1/chat/completions
                or the base ending in /v1            https://api.openai.com/v1
  azure_openai  the resource endpoint, with --deployment (and --api-version, default 2024-10-21)
                                                     https://my-resource.openai.azure.com
                or the v1 base (--model is the deployment name)
                                                     https://my-resource.openai.azure.com/openai/v1
  gemini        the API base                         https://generativelanguage.googleapis.com
                or the full streaming URL            .../v1beta/models/MODEL:streamGenerateContent
                (a key= query parameter is dropped: the key is sent in x-goog-api-key)
  anthropic     the API base                         https://api.anthropic.com
                or the full Messages URL             https://api.anthropic.com/v1/messages
                (the key is sent in x-api-key, with anthropic-version 2023-06-01)
  groq_openai   the OpenAI-compatible base           https://api.groq.com/openai/v1
"""

_EPILOG = """\
exit status: 0 compatible, 1 not compatible, 2 usage error.
examples:
  LLM_API_KEY=sk-... llm-gateway check --format openai --url https://api.openai.com/v1 --model gpt-4o-mini
  llm-gateway check --format gemini --url http://127.0.0.1:8080 --model fake-model \\
      --api-key fake-key --allow-private --json
"""


def register(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="run the conformance suite against an endpoint",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--format",
        required=True,
        choices=("openai", "azure_openai", "gemini", "anthropic", "groq_openai"),
        dest="llm_format",
    )
    check.add_argument("--url", required=True, help="the endpoint URL (forms above)")
    check.add_argument("--model", required=True, help="model name (Azure v1: the deployment name)")
    check.add_argument("--api-key", help=f"the endpoint's API key (default: ${API_KEY_ENV})")
    check.add_argument("--deployment", help="Azure deployment name (classic resource-endpoint URLs)")
    check.add_argument("--api-version", help="Azure api-version, e.g. 2024-10-21 (classic URLs)")
    check.add_argument(
        "--reasoning-effort",
        choices=("default", "low", "medium", "high"),
        help="as the LLM's reasoningEffort",
    )
    check.add_argument(
        "--reasoning-format", choices=("hidden", "parsed", "raw"), help="as the LLM's reasoningFormat"
    )
    check.add_argument(
        "--allow-private",
        action="store_true",
        help="allow http, any port and private/loopback addresses (a server on your machine)",
    )
    check.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="time limit of the probe (default 30)"
    )
    check.add_argument("--json", action="store_true", help="print only the report JSON on stdout")
    check.set_defaults(run=run_check)


def _usage_error(message: str) -> int:
    print(f"llm-gateway check: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def run_check(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """The ``check`` command; ``environ`` is the user's environment (None: this process's)."""
    from llm_gateway.adapters.address_policy import AddressPolicy
    from llm_gateway.composition import probe_port
    from llm_gateway.domain.conformance import (
        EndpointConfig,
        ProbeConfigError,
        build_probe_request,
        run_conformance,
    )
    from llm_gateway.models.llm import EndpointUrl, LlmFormat, ReasoningEffort, ReasoningFormat

    env = os.environ if environ is None else environ
    api_key = args.api_key or env.get(API_KEY_ENV, "")
    if not api_key:
        return _usage_error(f"no API key: pass --api-key KEY or set {API_KEY_ENV}")
    if any(ch.isspace() for ch in api_key):
        return _usage_error("the API key must not contain whitespace")
    if not 0 < args.timeout <= 600:
        return _usage_error("--timeout must be between 0 and 600 seconds")
    try:
        EndpointUrl(url=args.url)
    except ValueError as exc:
        return _usage_error(f"--url: {_first_error(exc)}")
    llm_format = LlmFormat(args.llm_format)
    if llm_format is not LlmFormat.AZURE_OPENAI and (args.deployment or args.api_version):
        return _usage_error("--deployment and --api-version apply to --format azure_openai only")
    config = EndpointConfig(
        llm_format=llm_format,
        urls=(args.url,),
        model_name=args.model,
        deployment_name=args.deployment,
        api_version=args.api_version,
        reasoning_effort=ReasoningEffort(args.reasoning_effort) if args.reasoning_effort else None,
        reasoning_format=ReasoningFormat(args.reasoning_format) if args.reasoning_format else None,
    )
    try:
        build_probe_request(config, args.url, api_key)
    except ProbeConfigError as exc:
        return _usage_error(f"--url: {exc}")

    # The service's probe client, over the address policy the flags ask for (no settings at all).
    http = probe_port(AddressPolicy(allow_private=args.allow_private))
    with contextlib.closing(http.client):  # type: ignore[type-var]
        report = run_conformance(config, api_key, http, max_total_s=args.timeout)
    document = report.to_json_dict()
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        render(document, sys.stdout, color=use_color(sys.stdout))
    return 0 if report.compatible else NOT_COMPATIBLE


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


# ---------------------------------------------------------------------------------------------
# Human output
# ---------------------------------------------------------------------------------------------


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour on a terminal or when FORCE_COLOR is set; NO_COLOR (https://no-color.org) wins."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_STYLES = {"pass": "32", "warn": "33", "fail": "1;31", "skip": "2", "dim": "2", "bold": "1"}
_LABELS = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def render(report: dict[str, Any], out: TextIO, *, color: bool) -> None:
    """A table of checks with the hint under every failure, then timings and the verdict."""

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if color else text

    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 140))
    checks: list[dict[str, Any]] = report["checks"]
    id_width = min(max((len(c["id"]) for c in checks), default=5), 22)
    indent = " " * (4 + 1 + 9 + 1 + id_width + 1)
    print(paint(f"Conformance check: {report['llmFormat']} {report['endpoint']}", "bold"), file=out)
    print(file=out)
    print(paint(f"{'':4} {'CATEGORY':9} {'CHECK':{id_width}} MESSAGE", "dim"), file=out)
    for check in checks:
        status = check["status"]
        head = f"{paint(_LABELS[status].ljust(4), status)} {check['category']:9} {check['id']:{id_width}} "
        lines = _wrap(check["message"], max(30, width - len(indent))) or [""]
        print(head + lines[0], file=out)
        for line in lines[1:]:
            print(indent + line, file=out)
        if check.get("hint") and status in ("fail", "warn"):
            for i, line in enumerate(_wrap(check["hint"], max(30, width - len(indent) - 6))):
                print(
                    indent
                    + paint(("hint: " if i == 0 else "      ") + line, "dim" if status == "warn" else "fail"),
                    file=out,
                )
        if check.get("evidence") and status == "fail":
            evidence = " ".join(str(check["evidence"]).split())[: max(30, width - len(indent) - 10)]
            print(indent + paint(f"evidence: {evidence}", "dim"), file=out)
    timings = report.get("timings") or {}
    print(file=out)
    shown = [("first byte", "ttfbMs"), ("first answer token", "ttftMs"), ("total", "totalMs")]
    if timings.get("firstThoughtMs") is not None:
        shown.insert(1, ("first thought", "firstThoughtMs"))
    print("Timings: " + "  ".join(f"{label} {_ms(timings.get(key))}" for label, key in shown), file=out)
    failed = [c for c in checks if c["status"] == "fail"]
    warned = [c for c in checks if c["status"] == "warn"]
    if report["compatible"]:
        suffix = f" ({len(warned)} warning{'s' if len(warned) != 1 else ''})" if warned else ""
        print(paint(f"Verdict: COMPATIBLE{suffix}", "pass"), file=out)
    else:
        print(
            paint(
                f"Verdict: NOT COMPATIBLE: {len(failed)} check{'s' if len(failed) != 1 else ''} failed"
                + (f" (errorCode {report['errorCode']})" if report.get("errorCode") else ""),
                "fail",
            ),
            file=out,
        )


def _wrap(text: str, width: int) -> list[str]:
    """Wrap at spaces only: a URL or an identifier stays whole (it may overrun), so it can be copied."""
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"
