"""What the chat endpoint says to a caller who sent the wrong thing: the wrong key, broken JSON."""

from __future__ import annotations

import pytest

from llm_gateway.domain.accounts import new_api_key
from llm_gateway.domain.chat_body import parse_chat
from llm_gateway.domain.tokens import TokenMalformed, TokenVerifier
from llm_gateway.errors import BadRequest
from tests.unit.test_tokens import clock, signer, verifier  # noqa: F401 (fixtures)


def test_an_account_api_key_is_told_to_mint_a_session_token(verifier: TokenVerifier) -> None:  # noqa: F811
    key = new_api_key()
    with pytest.raises(TokenMalformed) as caught:
        verifier.verify(key)
    assert caught.value.code == "token_malformed"
    assert "account API key, not a session token" in caught.value.message
    assert "POST /v1/auth/session-token" in caught.value.message
    assert key not in caught.value.message


def test_any_other_garbage_gets_the_same_hint(verifier: TokenVerifier) -> None:  # noqa: F811
    with pytest.raises(TokenMalformed) as caught:
        verifier.verify("not-a-token")
    assert "POST /v1/auth/session-token" in caught.value.message
    assert "account API key" not in caught.value.message.split(".")[0]


@pytest.mark.parametrize("body", [b"{", b'{"messages": [', b"\xff", b""])
def test_a_body_that_is_not_json_is_invalid_request(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_chat(body)
    assert caught.value.code == "invalid_request"


def test_a_json_body_that_is_not_a_chat_request_names_the_field() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_chat(b'{"messages": [], "temperature": 9}')
    assert caught.value.code == "invalid_request"
    assert caught.value.details == [
        {"field": "messages", "message": "needs at least 1 item", "type": "too_short"},
        {"field": "temperature", "message": "must be at most 2.0", "type": "less_than_equal"},
    ]
    assert caught.value.message.startswith("The body is not a valid Chat Completions request: messages")
