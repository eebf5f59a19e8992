"""Every real transcript, replayed by a loopback server, gets the verdict its metadata implies.

The server answers ``llm-gateway check`` with the fixture's status, its recorded headers (framing
headers such as content-length/transfer-encoding are the server's own business and are dropped;
where none were recorded, ``text/event-stream`` for 200 and ``application/json`` otherwise, as
the sources document) and the ``.sse`` bytes unchanged. It checks the key like a real provider:
the probe's wrong key gets a 401 in the provider's shape, so the auth probe has something to judge.

How ``expected_compatible`` maps onto a LIVE check (the subtle part):

- The metadata's verdict is about the *bytes*: "is this what a compatible server sends?". A
  401 with a correct Azure error body is expected-compatible. But ``llm-gateway check`` probes a
  live endpoint with a config, and an endpoint that answers 401/404/400 does not work with that
  config: the report is ``compatible: false`` with the failure on ``http_status`` (category auth,
  model, request). So for error fixtures we assert the failing check and its category, that the
  error *body* check did not fail, and ``details.specConforms`` (the providers' ``conforms()``),
  not ``compatible``. The same holds for a well-formed mid-stream error (the Gemini fixture):
  it conforms, yet the request failed.
- ``scope`` fixtures are fragments (a stream prefix): a live probe that gets only a prefix
  rightly fails the end-of-stream rules, so only those may fail; everything else must pass.
- ``expected_compatible: false`` fixtures must fail a spec check (streaming or format), not just
  an outcome check.

A missing fixture directory fails the suite: it is the ground truth, never optional.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llm_gateway_cli.main import main

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRANSCRIPTS = REPO_ROOT / "tests" / "fixtures" / "transcripts"
KEY = "replay-key-0123456789"
DROPPED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)
#: Checks whose failure reports what the upstream said (a well-formed error), not a spec violation.
OUTCOME_IDS = frozenset({"http_status", "mid_stream_error", "inband_error", "auth_probe"})
END_OF_STREAM_IDS = frozenset({"done_terminator", "finish_reason", "terminator"})
SPEC_CATEGORIES = frozenset({"streaming", "format"})


def _metadata_files() -> list[Path]:
    return sorted(TRANSCRIPTS.glob("*/*.json"))


def test_fixture_directory_exists_for_every_provider() -> None:
    assert TRANSCRIPTS.is_dir(), f"missing fixtures: {TRANSCRIPTS}"
    for provider in ("openai", "azure", "gemini", "anthropic"):
        assert list((TRANSCRIPTS / provider).glob("*.sse")), f"no {provider} transcripts in {TRANSCRIPTS}"


# --------------------------------------------------------------------------------------------
# The replay server
# --------------------------------------------------------------------------------------------


class Replay:
    """What the server answers next; tests swap it per fixture."""

    status = 200
    headers: ClassVar[list[tuple[str, str]]] = []
    body = b""
    provider = "openai"


def _presented_key(handler: BaseHTTPRequestHandler) -> str | None:
    auth = handler.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (
        handler.headers.get("api-key")
        or handler.headers.get("x-goog-api-key")
        or handler.headers.get("x-api-key")
    )


def _wrong_key_answer(provider: str) -> tuple[int, bytes]:
    if provider == "anthropic":
        error = {"type": "authentication_error", "message": "invalid x-api-key"}
        return 401, json.dumps({"type": "error", "error": error}).encode()
    if provider == "gemini":
        error = {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                 "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}  # fmt: skip
        return 400, json.dumps({"error": error}).encode()
    error = {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None,
             "code": "invalid_api_key"}  # fmt: skip
    return 401, json.dumps({"error": error}).encode()


class ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if _presented_key(self) != KEY:
            status, body = _wrong_key_answer(Replay.provider)
            headers = [("Content-Type", "application/json")]
        else:
            status, body, headers = Replay.status, Replay.body, Replay.headers
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ReplayHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def load(meta_path: Path) -> tuple[dict[str, Any], int, list[tuple[str, str]], bytes]:
    meta = json.loads(meta_path.read_text("utf-8"))
    status = int(meta.get("http_status", 200))
    headers: list[tuple[str, str]] = []
    for name, value in (meta.get("response_headers") or {}).items():
        if name.lower() in DROPPED_HEADERS:
            continue
        for item in value if isinstance(value, list) else [value]:
            headers.append((name, str(item)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "text/event-stream" if status == 200 else "application/json"))
    return meta, status, headers, meta_path.with_suffix(".sse").read_bytes()


def check_args(base: str, provider: str) -> list[str]:
    return {
        "openai": ["--format", "openai", "--url", f"{base}/v1", "--model", "gpt-4o-mini"],
        "azure": ["--format", "azure_openai", "--url", f"{base}/openai/v1", "--model", "gpt-4o"],
        "gemini": ["--format", "gemini", "--url", base, "--model", "gemini-2.5-flash"],
        "anthropic": ["--format", "anthropic", "--url", base, "--model", "claude-sonnet-4-5"],
    }[provider]


def serve(meta_path: Path) -> tuple[dict[str, Any], int, bytes]:
    meta, status, headers, body = load(meta_path)
    Replay.status, Replay.headers, Replay.body = status, headers, body
    Replay.provider = meta_path.parent.name
    return meta, status, body


def expected_status_category(provider: str, status: int, body: bytes) -> set[str]:
    if status in (401, 403) or (provider == "gemini" and b"API_KEY_INVALID" in body):
        return {"auth"}
    return {400: {"request"}, 404: {"model", "endpoint"}, 429: {"request"}}.get(status, {"endpoint"})


def assert_verdict(
    meta_path: Path, meta: dict[str, Any], status: int, body: bytes, report: dict[str, Any]
) -> None:
    name = f"{meta_path.parent.name}/{meta_path.stem}"
    checks = report["checks"]
    failures = [c for c in checks if c["status"] == "fail"]
    by_id = {c["id"]: c for c in checks}
    summary = [(c["id"], c["category"], c["message"]) for c in failures]

    assert report["compatible"] is (not failures), name
    for check in failures:
        assert check["hint"], (name, check)
    for check in checks:
        assert len((check.get("evidence") or "").encode()) <= 512
    assert KEY not in json.dumps(report)

    if meta.get("scope"):  # a fragment: only the end-of-stream rules may fail
        assert report["compatible"] is False, name
        assert {c["id"] for c in failures} <= END_OF_STREAM_IDS, (name, summary)
        return
    assert report["details"]["specConforms"] is meta["expected_compatible"], (name, summary)
    if not meta["expected_compatible"]:
        assert report["compatible"] is False, name
        assert any(c["category"] in SPEC_CATEGORIES and c["id"] not in OUTCOME_IDS for c in failures), (
            name,
            summary,
        )
        return
    # Expected compatible: nothing but the upstream's own (well-formed) error may fail.
    assert {c["id"] for c in failures} <= OUTCOME_IDS, (name, summary)
    if status >= 400:
        assert report["compatible"] is False, name
        assert by_id["http_status"]["status"] == "fail"
        assert by_id["http_status"]["category"] in expected_status_category(
            meta_path.parent.name, status, body
        )
        assert by_id["error_body"]["status"] in ("pass", "warn"), (name, by_id["error_body"])
        assert report["errorCode"] and report["errorCode"].startswith("upstream_")
        if by_id["http_status"]["category"] == "auth":
            assert by_id["auth_probe"]["status"] == "skip"
    elif failures:  # 200 with a well-formed in-band error: conforms, but the request failed
        assert {c["id"] for c in failures} <= {"mid_stream_error", "inband_error"}, (name, summary)
    else:
        assert report["compatible"] is True, (name, summary)
        assert by_id["auth_probe"]["status"] == "pass"


@pytest.mark.parametrize(
    "meta_path", _metadata_files() or [None], ids=lambda p: p and f"{p.parent.name}/{p.stem}"
)
def test_transcript_verdict(server: str, meta_path: Path | None, capsys: pytest.CaptureFixture[str]) -> None:
    assert meta_path is not None, f"no transcript metadata under {TRANSCRIPTS}"
    meta, status, body = serve(meta_path)
    capsys.readouterr()
    code = main(
        ["check", "--allow-private", "--api-key", KEY, "--json", *check_args(server, meta_path.parent.name)]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["compatible"] else 1)
    assert_verdict(meta_path, meta, status, body, report)


SUBPROCESS_FIXTURES = [
    "openai/openai-python-text-usage.json",
    "openai/broken-ollama-native-ndjson-complete.json",
    "azure/botsharp-401-invalid-key.json",
    "gemini/cookbook-streaming-rest-cats.json",
]


@pytest.mark.parametrize("relative", SUBPROCESS_FIXTURES)
def test_transcript_verdict_through_a_real_subprocess(server: str, relative: str) -> None:
    meta_path = TRANSCRIPTS / relative
    assert meta_path.exists(), f"missing fixture {meta_path}"
    meta, status, body = serve(meta_path)
    result = subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", "check", "--allow-private", "--json",
         *check_args(server, meta_path.parent.name)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**_env_without_key(), "LLM_API_KEY": KEY}, cwd=REPO_ROOT,
    )  # fmt: skip
    report = json.loads(result.stdout)  # stdout holds only the report
    assert result.returncode == (0 if report["compatible"] else 1), result.stderr
    assert_verdict(meta_path, meta, status, body, report)


def _env_without_key() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "LLM_API_KEY"}
