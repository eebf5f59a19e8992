"""``llm-gateway chat``: talk to an LLM through a running gateway, streamed to the terminal.

It mints a session token for the LLM (``POST /v1/auth/session-token``), then sends each turn to
``POST /v1/chat/completions`` the way the platform does (OpenAI format, ``stream: true``) and
prints the answer as it arrives, with the time to first token and the total time (stderr, dim).
The conversation history is kept for the next turn. ``quit`` or end of input stops;
``--message`` runs a single turn.

Exit codes: 0 success, 1 the gateway refused or the stream failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from llm_gateway_cli.commands.client import (
    FAILURE,
    USAGE_ERROR,
    connection,
    connection_arguments,
    report_error,
    request,
    unreachable,
)

#: The answer may take its time; the gateway pings every 15 s of silence.
READ_TIMEOUT_S = 120.0
_QUIT = {"quit", "exit", "/quit", "/exit"}
#: Tokens that died of old age are minted again once, transparently.
_EXPIRED = {"token_expired", "session_inactive", "token_lifetime_exceeded"}

_DESCRIPTION = """\
Chat with an LLM through a running gateway (the local stack by default). A session token is
minted for the LLM, each turn goes to POST /v1/chat/completions like the platform's (OpenAI
format, streamed), and the answer prints as it arrives, followed by the time to first token and
the total time on stderr. The history is kept; `quit` or end of input stops. --message runs a
single turn.
"""

_EPILOG = """\
exit status: 0 success, 1 the gateway refused or the stream failed, 2 usage error.
examples:
  llm-gateway chat --llm ANAM_GPT_4O_MINI_V1
  llm-gateway chat --llm LLM_ID --system-prompt 'Answer in one sentence.' --message 'hi'
"""


def register(sub: Any) -> None:
    chat = sub.add_parser(
        "chat",
        help="chat with an LLM through the gateway (streams to the terminal)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("--llm", required=True, metavar="ID", help="LLM id: one of yours or a built-in")
    chat.add_argument("--system-prompt", metavar="TEXT", help="the persona's system prompt")
    chat.add_argument("--message", metavar="TEXT", help="send one message, print the answer, exit")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="max_tokens of each answer")
    connection_arguments(chat)
    chat.set_defaults(run=run_chat)


# ---------------------------------------------------------------------------------------------
# One streamed answer
# ---------------------------------------------------------------------------------------------


@dataclass
class _ToolCall:
    name: str = ""
    arguments: str = ""


@dataclass
class Turn:
    """What one streamed answer produced."""

    text: str = ""
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    done: bool = False
    first_token_s: float | None = None
    total_s: float | None = None


class StreamPrinter:
    """Turns the gateway's SSE events into terminal output: text as it comes, tool calls as
    ``[tool call name(args)]`` once complete, an error event as ``error: code: message``."""

    def __init__(self, out: TextIO, err: TextIO, started: float, clock: Any = time.perf_counter) -> None:
        from llm_gateway.providers.sse import SseParser

        self.out, self.err, self.started, self.clock = out, err, started, clock
        self.parser = SseParser()
        self.turn = Turn()
        self._printed_tools: set[int] = set()

    def feed(self, chunk: bytes) -> None:
        for event in self.parser.feed(chunk):
            self._event(event.data)

    def finish(self) -> Turn:
        for event in self.parser.finish():
            self._event(event.data)
        self._flush_tools()
        self.turn.total_s = self.clock() - self.started
        return self.turn

    def _event(self, data: str) -> None:
        if self.turn.done or self.turn.error:
            return
        if data.strip() == "[DONE]":
            self._flush_tools()
            self.turn.done = True
            return
        try:
            payload = json.loads(data)
        except ValueError:
            self.turn.error = ("protocol_error", "the stream sent an event that is not JSON")
            return
        if not isinstance(payload, dict):
            return
        if isinstance(payload.get("error"), dict):
            error = payload["error"]
            self.turn.error = (str(error.get("code") or "stream_error"), str(error.get("message") or ""))
            return
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self._first_token()
                self.turn.text += content
                self.out.write(content)
                self.out.flush()
            for call in delta.get("tool_calls") or []:
                self._first_token()
                index = int(call.get("index", 0))
                function = call.get("function") or {}
                pending = self.turn.tool_calls.setdefault(index, _ToolCall())
                pending.name += function.get("name") or ""
                pending.arguments += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self._flush_tools()

    def _first_token(self) -> None:
        if self.turn.first_token_s is None:
            self.turn.first_token_s = self.clock() - self.started

    def _flush_tools(self) -> None:
        for index, call in sorted(self.turn.tool_calls.items()):
            if index not in self._printed_tools:
                self._printed_tools.add(index)
                lead = "\n" if self.turn.text and not self.turn.text.endswith("\n") else ""
                self.out.write(f"{lead}[tool call {call.name}({call.arguments})]\n")
                self.out.flush()


# ---------------------------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------------------------


class _Refused(Exception):
    """The gateway answered with an error status before streaming; the message is printed."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Chat:
    def __init__(self, args: argparse.Namespace, url: str, key: str) -> None:
        self.args, self.url, self.key = args, url, key
        self.history: list[dict[str, Any]] = []
        self.token: str | None = None
        self.color = _use_color(sys.stderr)

    def mint(self) -> bool:
        import httpx

        persona: dict[str, Any] = {"name": "CLI chat", "llmId": self.args.llm}
        if self.args.system_prompt is not None:
            persona["systemPrompt"] = self.args.system_prompt
        try:
            response = request(
                "POST", f"{self.url}/v1/auth/session-token", self.key, {"personaConfig": persona}
            )
        except httpx.HTTPError as exc:
            unreachable(self.url, exc)
            return False
        if response.status_code != 200:
            report_error(response)
            return False
        minted = response.json()
        self.token = str(minted["sessionToken"])
        for warning in minted.get("warnings") or []:
            print(f"warning: {warning}", file=sys.stderr)
        return True

    def turn(self, message: str) -> bool:
        """Send one user message; True when the answer streamed to the end."""
        self.history.append({"role": "user", "content": message})
        try:
            try:
                result = self._stream(renew=True)
            except _Refused as refused:
                if refused.code not in _EXPIRED:
                    raise
                # The token expired (a long conversation): mint a new one and try once more.
                result = self._stream(renew=False) if self.mint() else None
        except _Refused:
            result = None
        except KeyboardInterrupt:
            print("\n[interrupted]", file=sys.stderr)
            result = None
        if result is None or result.error or not result.done:
            self.history.pop()
            return False
        message_out: dict[str, Any] = {"role": "assistant", "content": result.text}
        self.history.append(message_out)
        return True

    def _stream(self, *, renew: bool) -> Turn | None:
        """Stream one answer. Raises ``_Refused`` on an error status (printed, except an expired
        token when ``renew`` is set: the caller mints a new one)."""
        import httpx

        body: dict[str, Any] = {"messages": self.history, "stream": True}
        if self.args.max_tokens is not None:
            body["max_tokens"] = self.args.max_tokens
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(30.0, read=READ_TIMEOUT_S)
        started = time.perf_counter()
        printer = StreamPrinter(sys.stdout, sys.stderr, started)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream(
                    "POST", f"{self.url}/v1/chat/completions", json=body, headers=headers
                ) as response,
            ):
                if response.status_code != 200:
                    response.read()
                    code = _error_code(response)
                    if not (renew and code in _EXPIRED):
                        report_error(response)
                    raise _Refused(code)
                for chunk in response.iter_raw():
                    printer.feed(chunk)
                    if printer.turn.error:
                        break
        except httpx.HTTPError as exc:
            if printer.turn.text:
                print(file=sys.stdout)
            print(f"error: the stream broke: {type(exc).__name__}", file=sys.stderr)
            return None
        turn = printer.finish()
        if turn.text and not turn.text.endswith("\n"):
            print(file=sys.stdout, flush=True)
        if turn.error:
            code, message = turn.error
            print(f"error: {code}: {message}", file=sys.stderr)
        elif not turn.done:
            print("error: the stream ended without [DONE]", file=sys.stderr)
        self._timings(turn)
        return turn

    def _timings(self, turn: Turn) -> None:
        first = "-" if turn.first_token_s is None else _ms(turn.first_token_s)
        line = f"time to first token {first}, total {_ms(turn.total_s or 0.0)}"
        print(f"\x1b[2m{line}\x1b[0m" if self.color else line, file=sys.stderr, flush=True)


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _use_color(stream: TextIO) -> bool:
    from llm_gateway_cli.commands.check import use_color

    return use_color(stream)


def run_chat(args: argparse.Namespace) -> int:
    if args.message is not None and not args.message.strip():
        print("llm-gateway chat: error: --message must not be empty", file=sys.stderr)
        return USAGE_ERROR
    if args.max_tokens is not None and args.max_tokens < 1:
        print("llm-gateway chat: error: --max-tokens must be 1 or more", file=sys.stderr)
        return USAGE_ERROR
    found = connection(args)
    if found is None:
        return USAGE_ERROR
    chat = Chat(args, *found)
    if not chat.mint():
        return FAILURE
    if args.message is not None:
        return 0 if chat.turn(args.message) else FAILURE
    interactive = sys.stdin.isatty()
    exit_code = 0  # piped input: 1 when some turn failed
    if interactive:
        print(f"Chatting with {args.llm}. Type `quit` or press Ctrl-D to stop.", file=sys.stderr)
    while True:
        if interactive:
            print("\n> ", end="", file=sys.stderr, flush=True)
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return exit_code
        if not line:
            return exit_code
        message = line.strip()
        if message.lower() in _QUIT:
            return exit_code
        if message and not chat.turn(message):
            exit_code = FAILURE
