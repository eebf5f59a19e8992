"""What every spec shares, once: redaction and evidence, the findings collector, header filtering,
Retry-After, media types, error objects and the status codes that mean the same everywhere."""

from llm_gateway.providers.common.findings import MAX_EVIDENCE_BYTES, Findings, conforms, trim_evidence
from llm_gateway.providers.common.http import (
    MAX_RETRY_AFTER_S,
    RESERVED_HEADERS,
    UpstreamError,
    code_for_status,
    error_object,
    filter_extra_headers,
    header_map,
    media_type,
    retry_after,
)
from llm_gateway.redaction import REDACTED, redact_text

__all__ = [
    "MAX_EVIDENCE_BYTES",
    "MAX_RETRY_AFTER_S",
    "REDACTED",
    "RESERVED_HEADERS",
    "Findings",
    "UpstreamError",
    "code_for_status",
    "conforms",
    "error_object",
    "filter_extra_headers",
    "header_map",
    "media_type",
    "redact_text",
    "retry_after",
    "trim_evidence",
]
