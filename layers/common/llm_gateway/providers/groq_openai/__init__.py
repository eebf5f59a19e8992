"""Groq's OpenAI-compatible API (``https://api.groq.com/openai/v1``): the OpenAI spec, plus Groq's
reasoning parameters (``reasoning_effort``, ``reasoning_format``) sent as the LLM sets them."""

from llm_gateway.providers.groq_openai.provider import GROQ_OPENAI, GroqOpenAiProvider

__all__ = ["GROQ_OPENAI", "GroqOpenAiProvider"]
