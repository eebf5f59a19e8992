"""Azure OpenAI: its URLs and ``api-key`` auth (``request``), and the OpenAI checks and relay run with
Azure's tolerances (``checks``, ``AzureStreamRelay``), behind the ``Provider`` in ``provider``."""

from llm_gateway.providers.azure_openai.checks import AZURE_PROFILE, check_response
from llm_gateway.providers.azure_openai.provider import AZURE_OPENAI, AzureOpenAiProvider
from llm_gateway.providers.azure_openai.request import (
    DEFAULT_API_VERSION,
    build_request,
    chat_completions_url,
    is_v1_url,
)
from llm_gateway.providers.base import EndpointUrlError
from llm_gateway.providers.common.http import UpstreamError
from llm_gateway.providers.openai.errors import classify_upstream_error
from llm_gateway.providers.openai.relay import OpenAiStreamRelay
from llm_gateway.providers.request import UpstreamRequest

__all__ = [
    "AZURE_OPENAI",
    "AZURE_PROFILE",
    "DEFAULT_API_VERSION",
    "AzureOpenAiProvider",
    "AzureStreamRelay",
    "EndpointUrlError",
    "UpstreamError",
    "UpstreamRequest",
    "build_request",
    "chat_completions_url",
    "check_response",
    "classify_upstream_error",
    "is_v1_url",
]


class AzureStreamRelay(OpenAiStreamRelay):
    """OpenAI relay that drops prompt-filter and annotation-only chunks (keeping a content_filter stop)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(azure=True)
