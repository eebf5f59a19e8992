"""Verification remembered per token until it expires (issue 22): a session's next answer skips the
ES256 check, yet an expired token is refused at once and a forged one is never remembered."""

from __future__ import annotations

import pytest

from llm_gateway.domain.token_memory import RememberedVerifications
from llm_gateway.domain.tokens import (
    PublicKeySet,
    SessionClaims,
    TokenExpired,
    TokenSignatureInvalid,
    TokenVerifier,
)
from tests.unit.test_tokens import NOW, POLICY, FakeClock, LocalSigner, forge, good_header, valid_claims


class CountingVerifier:
    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self.calls = 0

    def verify(self, token: str) -> SessionClaims:
        self.calls += 1
        return self.verifier.verify(token)


@pytest.fixture
def setup() -> tuple[LocalSigner, FakeClock, CountingVerifier, RememberedVerifications]:
    signer, clock = LocalSigner(), FakeClock()
    counting = CountingVerifier(
        TokenVerifier(PublicKeySet({signer.key_id: signer.public_key}), POLICY, clock)
    )
    return signer, clock, counting, RememberedVerifications(counting.verify, clock=clock)


def test_a_token_verified_once_is_not_verified_again_until_it_expires(
    setup: tuple[LocalSigner, FakeClock, CountingVerifier, RememberedVerifications],
) -> None:
    signer, clock, counting, remembered = setup
    token = forge(signer, good_header(signer), valid_claims())
    first = remembered.verify(token)
    clock.now = NOW + 599
    assert remembered.verify(token) == first
    assert counting.calls == 1
    clock.now = NOW + 600 + 29  # expired, within the verifier's leeway: its answer, every time
    assert remembered.verify(token) == first
    assert remembered.verify(token) == first
    assert counting.calls == 3
    clock.now = NOW + 600 + 30
    with pytest.raises(TokenExpired):
        remembered.verify(token)
    assert len(remembered) == 0


def test_a_token_that_fails_is_checked_again_every_time(
    setup: tuple[LocalSigner, FakeClock, CountingVerifier, RememberedVerifications],
) -> None:
    signer, _, counting, remembered = setup
    genuine = forge(signer, good_header(signer), valid_claims())
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(TokenSignatureInvalid):
            remembered.verify(forged)
    assert counting.calls == 2
    assert len(remembered) == 0


def test_memory_stays_bounded_dropping_expired_then_oldest(
    setup: tuple[LocalSigner, FakeClock, CountingVerifier, RememberedVerifications],
) -> None:
    signer, clock, counting, _ = setup
    remembered = RememberedVerifications(counting.verify, clock=clock, max_tokens=3)
    tokens = [
        forge(signer, good_header(signer), valid_claims(jti=f"t{i}", exp=NOW + 100 * (i + 1)))
        for i in range(4)
    ]
    for token in tokens[:3]:
        remembered.verify(token)
    clock.now = NOW + 100  # the first has expired: it makes room
    remembered.verify(tokens[3])
    assert len(remembered) == 3
    calls = counting.calls
    remembered.verify(tokens[1])
    assert counting.calls == calls, "the others are still remembered"
