"""One incremental Server-Sent-Events parser for every upstream spec (WHATWG event-stream algorithm).

Bytes in, events out, no I/O. It sits on the proxy's hot path, so it splits whole chunks with
bytes operations and only loops in Python per *line*, never per byte. Alongside the events it
keeps the observations the conformance checks need (line endings, comments, stray lines, …),
because a strict validator must judge what the SDKs would choke on, not just what parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "SseEvent",
    "SseEventTooLarge",
    "SseLimitExceeded",
    "SseLineTooLong",
    "SseObservations",
    "SseParser",
    "encode_comment",
    "encode_data_event",
    "parse_sse",
]

DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024

# Observations keep at most this many bytes of comment / stray-line text: enough for a
# pretty-printed error object, bounded so a hostile upstream cannot grow our memory.
_MAX_KEPT_TEXT_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"


class SseLimitExceeded(ValueError):
    """The upstream broke a size cap; the stream must be aborted (memory stays bounded)."""

    def __init__(self, message: str, *, limit: int, events_before: list[SseEvent] | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        # Events completed in the same ``feed`` call before the limit was hit, so a caller
        # can still forward them: the result does not depend on how the bytes were chunked.
        self.events_before: list[SseEvent] = events_before or []


class SseLineTooLong(SseLimitExceeded):
    """A single line exceeded ``max_line_bytes``."""


class SseEventTooLarge(SseLimitExceeded):
    """The ``data`` lines of one event together exceeded ``max_event_bytes``."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event.

    ``event``/``id``/``retry`` are the values of those fields *inside this event's block*
    (``None`` when absent), so validators can tell which fields the upstream actually sent.
    ``truncated`` marks an event cut off by the end of the body (no blank line after it),
    which the WHATWG algorithm would discard.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    truncated: bool = False


@dataclass(slots=True)
class SseObservations:
    """What the stream looked like, beyond its events. Text lists are capped; counts are exact."""

    lf_line_ends: int = 0
    crlf_line_ends: int = 0
    cr_line_ends: int = 0
    comment_count: int = 0
    comments: list[str] = field(default_factory=list)
    # Lines that are neither comments nor data/event/id/retry fields (WHATWG ignores them), e.g.
    # NDJSON bodies, or Gemini's bare pretty-printed ``{"error": …}`` after the events.
    non_field_line_count: int = 0
    non_field_lines: list[str] = field(default_factory=list)
    data_lines: int = 0
    data_lines_without_space: int = 0
    event_fields: int = 0
    id_fields: int = 0
    retry_fields: int = 0
    # Blank lines that dispatch nothing although an ``id:`` was seen earlier: openai-python keeps
    # the last id and then dispatches an empty, non-JSON event for each of them.
    empty_blocks_after_id: int = 0
    events: int = 0
    truncated_event: bool = False
    invalid_utf8: bool = False
    bom: bool = False
    kept_text_bytes: int = 0

    @property
    def line_endings(self) -> set[str]:
        """The line-end styles seen: a subset of ``{"lf", "crlf", "cr"}``."""
        seen = set()
        if self.lf_line_ends:
            seen.add("lf")
        if self.crlf_line_ends:
            seen.add("crlf")
        if self.cr_line_ends:
            seen.add("cr")
        return seen

    @property
    def data_without_space(self) -> bool:
        return self.data_lines_without_space > 0

    def _keep(self, target: list[str], text: str) -> None:
        size = len(text)
        if self.kept_text_bytes + size <= _MAX_KEPT_TEXT_BYTES:
            target.append(text)
            self.kept_text_bytes += size


def _decode(raw: bytes, obs: SseObservations) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        obs.invalid_utf8 = True
        return raw.decode("utf-8", "replace")


class SseParser:
    """Incremental WHATWG event-stream parser.

    ``feed`` accepts bytes split at any offset (inside a UTF-8 sequence, between ``\\r`` and
    ``\\n``) and returns the events completed so far; ``finish`` flushes the end of the body.
    Only complete lines are decoded. A partial line is never buffered beyond ``max_line_bytes``.
    """

    __slots__ = (
        "_closed",
        "_cr_pending",
        "_data",
        "_data_bytes",
        "_event",
        "_failed",
        "_has_data",
        "_id",
        "_pending",
        "_retry",
        "_saw_id",
        "_started",
        "max_event_bytes",
        "max_line_bytes",
        "observations",
    )

    def __init__(
        self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        if max_line_bytes < 1 or max_event_bytes < 1:
            raise ValueError("limits must be positive")
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.observations = SseObservations()
        self._pending = bytearray()  # the current partial line (never contains CR or LF)
        self._cr_pending = False  # the last byte seen was a CR: skip one LF at the next feed
        self._started = False  # a first line was seen (BOM handling)
        self._failed: SseLimitExceeded | None = None
        self._closed = False
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._has_data = False
        self._event: bytes | None = None
        self._id: bytes | None = None
        self._retry: int | None = None
        self._saw_id = False

    # -- public API ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[SseEvent]:
        """Consume the next bytes of the body; return the events they complete."""
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise RuntimeError("feed() after finish()")
        if not data:
            return []
        obs = self.observations
        if self._cr_pending:
            self._cr_pending = False
            if data[:1] == b"\n":
                obs.crlf_line_ends += 1
                data = data[1:]
                if not data:
                    return []
            else:
                obs.cr_line_ends += 1
        has_lf = b"\n" in data
        has_cr = b"\r" in data
        if not has_lf and not has_cr:
            # Fast path: still inside one line (e.g. a long line trickling in).
            if len(self._pending) + len(data) > self.max_line_bytes:
                self._fail(SseLineTooLong, [])
            self._pending += data
            return []
        if self._pending:
            buf = bytes(self._pending) + data
            self._pending.clear()
        else:
            buf = bytes(data)
        if has_cr:
            crlf = buf.count(b"\r\n")
            cr_total = buf.count(b"\r")
            lf_total = buf.count(b"\n")
            if buf.endswith(b"\r"):
                # Its style is decided by the first byte of the next feed (or EOF).
                self._cr_pending = True
                cr_total -= 1
            obs.crlf_line_ends += crlf
            obs.cr_line_ends += cr_total - crlf
            obs.lf_line_ends += lf_total - crlf
            lines = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        else:
            obs.lf_line_ends += buf.count(b"\n")
            lines = buf.split(b"\n")
        tail = lines.pop()
        events: list[SseEvent] = []
        cap = self.max_line_bytes
        for line in lines:
            if len(line) > cap:
                self._fail(SseLineTooLong, events)
            self._process_line(line, events)
        if len(tail) > cap:
            self._fail(SseLineTooLong, events)
        self._pending += tail
        return events

    @property
    def at_event_boundary(self) -> bool:
        """Between two events: nothing pending (no partial line, no open block, no CR awaiting its
        LF), past the first line, not failed or finished. A chunk of whole events starting here
        parses to exactly its ``data:`` lines."""
        return (
            self._started
            and not self._pending
            and not self._cr_pending
            and not self._has_data
            and self._event is None
            and self._id is None
            and self._retry is None
            and self._failed is None
            and not self._closed
        )

    def skip_whole_events(self, count: int) -> None:
        """Account for ``count`` whole ``data: …\n\n`` events the caller handled itself from
        ``at_event_boundary`` (the observations stay exact; the state stays at a boundary)."""
        obs = self.observations
        obs.events += count
        obs.data_lines += count
        obs.lf_line_ends += 2 * count

    def finish(self) -> list[SseEvent]:
        """Flush the end of the body. An event without its closing blank line is still
        dispatched, flagged ``truncated=True`` (the WHATWG algorithm would drop it)."""
        if self._failed is not None:
            raise self._failed
        if self._closed:
            return []
        self._closed = True
        events: list[SseEvent] = []
        if self._cr_pending:
            self._cr_pending = False
            self.observations.cr_line_ends += 1
        if self._pending:
            line = bytes(self._pending)
            self._pending.clear()
            self._process_line(line, events)
        if self._has_data:
            self.observations.truncated_event = True
            events.append(self._build_event(truncated=True))
        self._reset_block()
        return events

    # -- internals ----------------------------------------------------------------------------

    def _fail(self, kind: type[SseLimitExceeded], events: list[SseEvent]) -> None:
        if kind is SseLineTooLong:
            limit, what = self.max_line_bytes, f"an SSE line is longer than {self.max_line_bytes} bytes"
        else:
            limit, what = self.max_event_bytes, f"an SSE event is larger than {self.max_event_bytes} bytes"
        self._pending = bytearray()
        self._data = []
        error = kind(what, limit=limit, events_before=list(events))
        self._failed = kind(what, limit=limit)  # later calls re-raise without the events
        raise error

    def _process_line(self, line: bytes, events: list[SseEvent]) -> None:
        obs = self.observations
        if not self._started:
            self._started = True
            if line.startswith(_BOM):
                obs.bom = True
                line = line[3:]
        if not line:
            if self._has_data:
                events.append(self._build_event(truncated=False))
            elif self._saw_id:
                obs.empty_blocks_after_id += 1
            self._reset_block()
            return
        if line[:6] == b"data: ":
            self._append_data(line[6:], events)
            return
        first = line[0]
        if first == 0x3A:  # ':' comment
            obs.comment_count += 1
            obs._keep(obs.comments, _decode(line[1:], obs))
            return
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            obs.data_lines_without_space += 1
            self._append_data(value, events)
        elif name == b"event":
            obs.event_fields += 1
            self._event = value
        elif name == b"id":
            obs.id_fields += 1
            if b"\x00" not in value:
                self._id = value
                self._saw_id = True
        elif name == b"retry":
            obs.retry_fields += 1
            if value and value.isdigit():
                self._retry = int(value)
        else:
            obs.non_field_line_count += 1
            obs._keep(obs.non_field_lines, _decode(line, obs))

    def _append_data(self, value: bytes, events: list[SseEvent]) -> None:
        self.observations.data_lines += 1
        size = self._data_bytes + len(value) + 1
        if size > self.max_event_bytes:
            self._fail(SseEventTooLarge, events)
        self._data_bytes = size
        self._data.append(value)
        self._has_data = True

    def _build_event(self, *, truncated: bool) -> SseEvent:
        obs = self.observations
        obs.events += 1
        raw = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        return SseEvent(
            data=_decode(raw, obs),
            event=None if self._event is None else _decode(self._event, obs),
            id=None if self._id is None else _decode(self._id, obs),
            retry=self._retry,
            truncated=truncated,
        )

    def _reset_block(self) -> None:
        self._data = []
        self._data_bytes = 0
        self._has_data = False
        self._event = None
        self._id = None
        self._retry = None


def parse_sse(
    body: bytes, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[list[SseEvent], SseObservations]:
    """Parse a whole body at once (validator use): events plus observations."""
    parser = SseParser(max_line_bytes=max_line_bytes)
    events = parser.feed(body)
    events.extend(parser.finish())
    return events, parser.observations


def encode_data_event(data: str | bytes) -> bytes:
    """Frame ``data`` as one ``data: …\\n\\n`` event (one ``data:`` line per embedded line)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"\n" in raw or b"\r" in raw:
        parts = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return b"".join(b"data: " + part + b"\n" for part in parts) + b"\n"
    return b"data: " + raw + b"\n\n"


def encode_comment(text: str = "") -> bytes:
    """Frame an SSE comment (keep-alive), e.g. ``: ping``."""
    clean = text.replace("\r", " ").replace("\n", " ")
    return b": " + clean.encode("utf-8") + b"\n\n" if clean else b":\n\n"
