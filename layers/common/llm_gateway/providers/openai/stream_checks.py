"""The OpenAI stream checks: one walk over the parsed events (WIRE_FORMATS.md §0, §1.3-§1.6, §2.2)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.models.report import CheckCategory, CheckStatus
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.stream_errors import stream_error_hint
from llm_gateway.providers.openai.errors import classify_upstream_error, inband_code
from llm_gateway.providers.openai.wire import FINISH_REASONS, is_azure_annotation
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, SseObservations, SseParser


@dataclass(slots=True)
class _ChoiceState:
    finishes: int = 0
    finish_reason: str | None = None
    annotation_finish: str | None = None
    tool_calls: dict[int, list[str]] = field(default_factory=dict)  # index -> argument fragments


class StreamChecker:
    """Walks the parsed events once and records findings (WIRE_FORMATS.md §0, §1.3-§1.6, §2.2)."""

    def __init__(
        self,
        azure: bool,
        findings: Findings,
        expect_complete: bool,
        expect_start: bool,
        max_line_bytes: int,
    ) -> None:
        self.azure = azure
        self.f = findings
        self.expect_complete = expect_complete
        self.expect_start = expect_start
        self.max_line_bytes = max_line_bytes
        self.choices: dict[int, _ChoiceState] = {}
        self.first_id: str | None = None
        self.first_created: int | None = None
        self.done_seen = False
        self.events_after_done = 0
        self.content_seen = False
        self.role_checked = not expect_start
        self.inband_errors = 0

    def run(self, body: bytes) -> None:
        parser = SseParser(max_line_bytes=self.max_line_bytes)
        try:
            events = parser.feed(body)
            events.extend(parser.finish())
        except SseLimitExceeded as exc:
            self.f.fail(
                "sse_framing",
                str(exc),
                "Keep each SSE line and event small; one chunk per data: line.",
            )
            events = exc.events_before
        obs = parser.observations
        self._check_framing(events, obs, body)
        for event in events:
            self._check_event(event)
        self._check_end(events)

    # -- framing -------------------------------------------------------------------------------

    def _check_framing(self, events: list[SseEvent], obs: SseObservations, body: bytes) -> None:
        f = self.f
        if not events:
            looks_json = body.lstrip()[:1] in (b"{", b"[")
            f.fail(
                "sse_framing",
                "no SSE data events in the body"
                + (" (the body is bare JSON lines, not `data: <json>` events)" if looks_json else ""),
                "Stream each chunk as `data: <json>` followed by a blank line (Server-Sent Events), "
                "ending with `data: [DONE]`.",
                evidence=body.decode("utf-8", "replace") if body else "(empty body)",
            )
        if obs.non_field_line_count:
            sample = obs.non_field_lines[0] if obs.non_field_lines else ""
            stripped = sample.strip()
            if events and stripped.startswith("{"):
                f.fail(
                    "sse_framing",
                    f"{obs.non_field_line_count} line(s) carry JSON without a `data:` prefix; SSE clients "
                    "ignore them",
                    "Prefix every JSON chunk with `data: ` and end each event with a blank line.",
                    evidence=sample,
                )
            elif events:
                f.warn(
                    "sse_framing",
                    f"{obs.non_field_line_count} line(s) are not SSE fields or comments (ignored)",
                    "Send only `data:` lines, blank lines and `:` comments.",
                    evidence=sample,
                )
        if obs.truncated_event:
            f.warn(
                "sse_framing",
                "the last event is not closed by a blank line; strict SSE clients discard it",
                "End every event, including `data: [DONE]`, with a blank line (\\n\\n).",
            )
        if obs.invalid_utf8:
            f.fail("data_json", "the stream is not valid UTF-8", "Encode the stream as UTF-8.")
        self._check_fields(obs)

    def _check_fields(self, obs: SseObservations) -> None:
        f = self.f
        if obs.empty_blocks_after_id:
            f.warn(
                "sse_fields",
                "blank lines without data after an `id:` field: openai-python then dispatches an empty "
                "event and fails to parse it",
                "Do not send `id:` fields, or do not follow comments with blank lines.",
            )
        fields = [
            name
            for name, count in (
                ("event", obs.event_fields),
                ("id", obs.id_fields),
                ("retry", obs.retry_fields),
            )
            if count
        ]
        if fields:
            f.warn(
                "sse_fields",
                f"the stream uses {', '.join(n + ':' for n in fields)} fields; OpenAI streams are data-only",
                "Drop event:/id:/retry: lines: the bundled openai-node client skips events whose "
                "`event` is set to anything but response.*.",
            )
        notes = []
        endings = sorted(obs.line_endings)
        if endings and endings != ["lf"]:
            notes.append("line endings: " + "+".join(endings))
        if obs.comment_count:
            notes.append(f"{obs.comment_count} comment line(s) (keep-alive)")
        if obs.data_without_space:
            notes.append("`data:` without a space (valid SSE)")
        if notes:
            f.note("sse_framing", "well-formed SSE framing; " + "; ".join(notes))

    # -- events ----------------------------------------------------------------------------------

    def _check_event(self, event: SseEvent) -> None:
        f = self.f
        data = event.data
        if self.done_seen:
            self.events_after_done += 1
            return
        if data.startswith("[DONE]"):
            self.done_seen = True
            if data != "[DONE]":
                f.warn(
                    "done_terminator",
                    f"terminator is {data!r}, not exactly [DONE]; openai-python accepts a prefix, "
                    "stricter clients do not",
                    "Send exactly `data: [DONE]`.",
                    evidence=data,
                )
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            f.fail(
                "data_json",
                "a data event is neither JSON nor [DONE]: OpenAI SDKs fail to parse it",
                "Every `data:` value must be one JSON chunk. Keep-alives must be SSE comments (`: ping`), "
                "not data.",
                evidence=data,
            )
            return
        if not isinstance(chunk, dict):
            f.fail(
                "chunk_schema",
                "a data event is JSON but not an object",
                "Each data event must be one chat.completion.chunk object.",
                evidence=data,
            )
            return
        if "error" in chunk and chunk.get("error") is not None:
            self._check_inband_error(chunk, data)
            return
        if self.azure and is_azure_annotation(chunk):
            self._check_annotation(chunk, data)
            return
        self._check_chunk(chunk, data)

    def _check_inband_error(self, chunk: dict[str, Any], data: str) -> None:
        self.inband_errors += 1
        error = chunk.get("error")
        error_obj = error if isinstance(error, dict) else {"message": str(error)}
        raw_code = error_obj.get("code")
        status = raw_code if isinstance(raw_code, int) and 100 <= raw_code <= 599 else None
        info = classify_upstream_error(
            status or 400, json.dumps({"error": error_obj}).encode(), secrets=self.f.secrets
        )
        when = (
            "after tokens were sent"
            if self.content_seen
            else "before any token (it should have been a non-2xx JSON error)"
        )
        code = info.code if status else inband_code(error_obj)
        self.f.add(
            "inband_error",
            CheckStatus.FAIL,
            f"the stream carries an error event {when}: {info.message}",
            stream_error_hint(code, after_tokens=self.content_seen),
            evidence=data,
            category=info.category if status else CheckCategory.FORMAT,
        )

    def _check_annotation(self, chunk: dict[str, Any], data: str) -> None:
        """Azure prompt-filter / asynchronous-filter chunks: tolerated, loosely checked."""
        choices = chunk.get("choices", [])
        if not isinstance(choices, list):
            self.f.fail("chunk_schema", "`choices` is not an array", "Send `choices` as an array.", data)
            return
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("index"), int):
                self.f.fail(
                    "chunk_schema",
                    "an annotation choice lacks an integer index",
                    "Every choice needs an integer `index`.",
                    data,
                )
                continue
            reason = choice.get("finish_reason")
            if reason is not None:
                state = self.choices.setdefault(choice["index"], _ChoiceState())
                if reason not in FINISH_REASONS:
                    self._bad_finish_reason(reason, data)
                else:
                    state.annotation_finish = reason

    def _check_chunk(self, chunk: dict[str, Any], data: str) -> None:
        f = self.f
        hint = (
            "Each chunk must follow the chat.completion.chunk schema (id, object, created, model, choices)."
        )
        obj = chunk.get("object")
        if obj != "chat.completion.chunk":
            extra = " (an empty object is only legal for Azure filter chunks)" if obj == "" else ""
            f.fail(
                "chunk_schema",
                f"`object` is {obj!r}, not 'chat.completion.chunk'{extra}",
                "Set `object` to `chat.completion.chunk` on every streamed chunk "
                "(`chat.completion` is the non-streaming object).",
                evidence=data,
            )
        chunk_id = chunk.get("id")
        if not isinstance(chunk_id, str):
            f.fail("chunk_schema", "`id` is missing or not a string", hint, data)
        else:
            if not chunk_id:
                f.warn("chunk_consistency", "`id` is empty", "Give every chunk the completion's id.", data)
            if self.first_id is None:
                self.first_id = chunk_id
            elif chunk_id != self.first_id:
                f.warn(
                    "chunk_consistency",
                    "`id` changes during the stream",
                    "Every chunk of one completion should carry the same id.",
                    data,
                )
        created = chunk.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            f.fail("chunk_schema", "`created` is missing or not an integer (Unix seconds)", hint, data)
        elif self.first_created is None:
            self.first_created = created
        elif created != self.first_created:
            f.warn("chunk_consistency", "`created` changes during the stream",
                   "Use the same `created` timestamp on every chunk.", data)  # fmt: skip
        if not isinstance(chunk.get("model"), str):
            f.fail("chunk_schema", "`model` is missing or not a string", hint, data)
        usage = chunk.get("usage")
        if usage is not None and not (
            isinstance(usage, dict)
            and all(
                isinstance(usage.get(k), int) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            )
        ):
            f.warn(
                "chunk_schema",
                "`usage` lacks integer prompt_tokens/completion_tokens/total_tokens",
                "Send usage as {prompt_tokens, completion_tokens, total_tokens} or null.",
                data,
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            f.fail("chunk_schema", "`choices` is missing or not an array", hint, data)
            return
        for choice in choices:
            self._check_choice(choice, data)

    def _check_choice(self, choice: Any, data: str) -> None:
        f = self.f
        if not isinstance(choice, dict):
            f.fail("chunk_schema", "a choice is not an object", "Each choice must be an object.", data)
            return
        index = choice.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            f.fail(
                "chunk_schema",
                "a choice lacks an integer `index`",
                "Give every choice an integer `index`.",
                data,
            )
            return
        state = self.choices.setdefault(index, _ChoiceState())
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            f.fail(
                "chunk_schema",
                "a choice has no `delta` object",
                "Streamed choices carry `delta` (use {} when there is nothing new), not `message`.",
                data,
            )
            delta = {}
        if not self.role_checked:
            self.role_checked = True
            if "role" not in delta:
                f.warn(
                    "role_first",
                    "the first chunk has no `delta.role`",
                    'Start the stream with delta {"role": "assistant"}.',
                    data,
                )
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            f.fail("chunk_schema", "`delta.content` is neither a string nor null",
                   "Send text deltas as strings.", data)  # fmt: skip
        if (
            "logprobs" in choice
            and choice["logprobs"] is not None
            and not isinstance(choice["logprobs"], dict)
        ):
            f.fail("chunk_schema", "`logprobs` is neither null nor an object",
                   "Send logprobs as null or {content: [...]}.", data)  # fmt: skip
        has_payload = bool(content) or bool(delta.get("tool_calls")) or bool(delta.get("refusal"))
        if has_payload and state.finishes:
            f.fail(
                "finish_reason",
                f"choice {index} sends more content after its finish_reason",
                "Set finish_reason only on the last chunk of each choice; null before that.",
                data,
            )
        if has_payload:
            self.content_seen = True
        tool_calls = delta.get("tool_calls")
        if tool_calls is not None:
            self._check_tool_calls(tool_calls, state, data)
        self._check_finish(choice, index, state, data)

    def _check_finish(self, choice: dict[str, Any], index: int, state: _ChoiceState, data: str) -> None:
        f = self.f
        if "finish_reason" not in choice:
            f.warn("chunk_schema", "a choice lacks `finish_reason` (should be null until the end)",
                   "Send `finish_reason: null` on intermediate chunks.", data)  # fmt: skip
        reason = choice.get("finish_reason")
        if reason is not None:
            if reason not in FINISH_REASONS:
                self._bad_finish_reason(reason, data)
            state.finishes += 1
            if state.finishes == 2:
                f.fail(
                    "finish_reason",
                    f"choice {index} has more than one non-null finish_reason",
                    "Send finish_reason once per choice, on its last chunk; null on every other chunk.",
                    data,
                )
            state.finish_reason = reason if isinstance(reason, str) else None

    def _bad_finish_reason(self, reason: Any, data: str) -> None:
        shown = '""' if reason == "" else repr(reason)
        self.f.fail(
            "finish_reason",
            f"finish_reason {shown} is not one of {', '.join(sorted(FINISH_REASONS))}",
            'Use null until the end, then stop, length, tool_calls or content_filter (never "").',
            data,
        )

    def _check_tool_calls(self, tool_calls: Any, state: _ChoiceState, data: str) -> None:
        f = self.f
        if not isinstance(tool_calls, list):
            f.fail("tool_call_deltas", "`delta.tool_calls` is not an array",
                   "Send tool-call deltas as an array.", data)  # fmt: skip
            return
        for call in tool_calls:
            if not isinstance(call, dict):
                f.fail("tool_call_deltas", "a tool-call delta is not an object",
                       "Send each tool-call delta as an object.", data)  # fmt: skip
                continue
            index = call.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                f.fail(
                    "tool_call_deltas",
                    "a tool-call delta has no integer `index`",
                    "Every tool_calls[] entry needs an integer `index` (0, 1, … per call); clients "
                    "use it to join argument fragments.",
                    data,
                )
                continue
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            first = index not in state.tool_calls
            if first and not self.expect_start:
                state.tool_calls[index] = []
            elif first:
                state.tool_calls[index] = []
                call_id = call.get("id")
                name = function.get("name")
                if not isinstance(call_id, str):
                    f.fail("tool_call_deltas", f"tool call {index} starts without an `id`",
                           "Send the call's `id` in its first delta.", data)  # fmt: skip
                elif not call_id:
                    f.warn("tool_call_deltas", f"tool call {index} has an empty `id`",
                           "Give every tool call a unique id for its tool result.", data)  # fmt: skip
                if not isinstance(name, str) or not name:
                    f.fail("tool_call_deltas", f"tool call {index} starts without `function.name`",
                           "Send `function.name` in the first delta of each call.", data)  # fmt: skip
                if call.get("type", "function") != "function":
                    f.warn("tool_call_deltas", f"tool call {index} has type {call.get('type')!r}",
                           "Use `type: function`.", data)  # fmt: skip
            arguments = function.get("arguments")
            if arguments is not None:
                if isinstance(arguments, str):
                    state.tool_calls[index].append(arguments)
                else:
                    f.fail("tool_call_deltas", "`function.arguments` is not a string",
                           "Stream arguments as string fragments of one JSON document.", data)  # fmt: skip

    # -- end of stream ---------------------------------------------------------------------------

    def _check_end(self, events: list[SseEvent]) -> None:
        f = self.f
        if self.events_after_done:
            f.warn(
                "done_terminator",
                f"{self.events_after_done} event(s) after [DONE]; SDKs stop reading at [DONE]",
                "Send nothing after `data: [DONE]`.",
            )
        for index, state in sorted(self.choices.items()):
            if state.tool_calls and state.finish_reason not in (None, "tool_calls", "function_call"):
                f.warn(
                    "tool_call_deltas",
                    f"choice {index} emitted tool calls but finished with {state.finish_reason!r}",
                    "Finish a tool-calling turn with finish_reason `tool_calls`.",
                )
        if not any(state.tool_calls for state in self.choices.values()):
            f.skip("tool_call_deltas", "no tool calls in this stream")
        if not self.expect_start:
            f.skip("role_first", "the capture is a fragment: start-of-stream rules do not apply")
        elif not self.choices and not self.f.items.get("role_first"):
            f.skip("role_first", "no choice-bearing chunk")
        if not self.expect_complete:
            for check_id in ("done_terminator", "finish_reason"):
                if check_id not in f.items:
                    f.skip(check_id, "the capture is a fragment: end-of-stream rules do not apply")
            return
        if not events:
            f.skip("done_terminator", "no events")
            f.skip("finish_reason", "no events")
            return
        if self.inband_errors:
            if not self.done_seen:
                f.skip("done_terminator", "the stream ended with an error event")
            return
        self._check_choices_complete()

    def _check_choices_complete(self) -> None:
        f = self.f
        for index, state in sorted(self.choices.items()):
            for call_index, fragments in sorted(state.tool_calls.items()):
                arguments = "".join(fragments)
                try:
                    json.loads(arguments)
                except ValueError:
                    f.fail(
                        "tool_call_deltas",
                        f"the arguments of tool call {call_index} (choice {index}) do not form valid JSON",
                        "The concatenated `function.arguments` fragments of each call must be one JSON "
                        "document (use {} for no arguments).",
                        evidence=arguments,
                    )
            if state.finishes == 0 and state.annotation_finish is None:
                f.fail(
                    "finish_reason",
                    f"choice {index} never gets a finish_reason",
                    "Send a last chunk with finish_reason (stop, length, tool_calls …) before [DONE].",
                )
        if not self.choices:
            f.fail(
                "finish_reason",
                "no chunk carries a choice",
                "Stream chat.completion.chunk objects with choices[].delta and a final finish_reason.",
            )
        if not self.done_seen:
            f.fail(
                "done_terminator",
                "the stream ends without `data: [DONE]`",
                "End the stream with `data: [DONE]` and a blank line, as the OpenAI API does. "
                "(openai-python tolerates a missing [DONE], other clients and proxies do not.)",
            )
