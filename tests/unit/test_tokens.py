"""Session-token minting and offline verification: SECURITY.md items 11–15, one test per case."""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import io
import json
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from llm_gateway.domain import signatures, tokens
from llm_gateway.domain.tokens import (
    PublicKeySet,
    SessionClaims,
    SessionRevoked,
    Signer,
    TokenClaimsInvalid,
    TokenExpired,
    TokenHeaderRejected,
    TokenInvalid,
    TokenLifetimeExceeded,
    TokenMalformed,
    TokenMinter,
    TokenNotYetValid,
    TokenPolicy,
    TokenSignatureInvalid,
    TokenUnknownKey,
    TokenVerifier,
    jwk_thumbprint,
    jwks_document,
    public_jwk,
)
from llm_gateway.errors import Forbidden, Unauthorized

ISSUER = "https://gateway.example"
AUDIENCE = "llm-gateway-stream"
NOW = 1_800_000_000
POLICY = TokenPolicy(issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LocalSigner:
    """In-process ES256 signer standing in for KMS in unit tests."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.public_key = self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return jwk_thumbprint(self.public_key)

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes

        r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        return signatures.low_s(r.to_bytes(32, "big") + s.to_bytes(32, "big"))  # as the KMS signer does


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@pytest.fixture
def signer() -> LocalSigner:
    return LocalSigner()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(signer: LocalSigner, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(PublicKeySet({signer.key_id: signer.public_key}), POLICY, clock)


@pytest.fixture
def minter(signer: LocalSigner, clock: FakeClock) -> TokenMinter:
    return TokenMinter(signer, POLICY, clock)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "acct_123",
        "sid": "sess_456",
        "llm": "llm_789",
        "jti": "tok_abc",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP = object()


def forge(signer: LocalSigner, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A correctly ES256-signed token with any header and claims: isolates the check under test."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    return f"{signing_input}.{b64(signer.sign(signing_input.encode()))}"


def good_header(signer: LocalSigner, **overrides: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "ES256", "typ": tokens.TOKEN_TYPE, "kid": signer.key_id}
    header.update(overrides)
    return {k: v for k, v in header.items() if v is not _DROP}


# --- happy path and minting ---------------------------------------------------------------------


def test_minted_token_verifies_and_round_trips_claims(minter: TokenMinter, verifier: TokenVerifier) -> None:
    minted = minter.mint(account_id="acct_1", session_id="sess_1", llm_id="llm_1", ttl_seconds=300)

    claims = verifier.verify(minted.token)

    assert claims == minted.claims
    assert (claims.account_id, claims.session_id, claims.llm_id) == ("acct_1", "sess_1", "llm_1")
    assert claims.issued_at == claims.not_before == NOW
    assert minted.expires_at == NOW + 300
    assert claims.token_id


def test_header_is_pinned_and_payload_holds_only_ids_and_times(
    minter: TokenMinter, signer: LocalSigner
) -> None:
    token = minter.mint(account_id="a", session_id="s", llm_id="l").token

    header = jwt.get_unverified_header(token)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))

    assert header == {"alg": "ES256", "typ": "llmgw-session+jwt", "kid": signer.key_id}
    assert set(payload) == {"iss", "aud", "sub", "sid", "llm", "jti", "iat", "nbf", "exp"}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64


def test_minted_token_verifies_with_plain_pyjwt(minter: TokenMinter, signer: LocalSigner) -> None:
    token = minter.mint(account_id="a", session_id="s", llm_id="l").token

    decoded = jwt.decode(
        token,
        signer.public_key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )

    assert decoded["sub"] == "a"


def test_token_signed_by_plain_pyjwt_verifies_with_our_verifier(
    signer: LocalSigner, verifier: TokenVerifier
) -> None:
    token = jwt.encode(
        valid_claims(),
        signer.private_key,
        algorithm="ES256",
        headers={"typ": tokens.TOKEN_TYPE, "kid": signer.key_id},
    )
    signing_input, _, signature = token.rpartition(".")
    # PyJWT leaves s as ECDSA produced it; the verifier takes the low-s spelling only.
    low = tokens.b64url_encode(signatures.low_s(tokens.b64url_decode(signature)))

    assert verifier.verify(f"{signing_input}.{low}").token_id == "tok_abc"


def _other_s(token: str) -> str:
    """The same token with its signature's other valid spelling, (r, n - s)."""
    signing_input, _, signature = token.rpartition(".")
    raw = tokens.b64url_decode(signature)
    s = int.from_bytes(raw[32:], "big")
    return (
        f"{signing_input}.{tokens.b64url_encode(raw[:32] + (signatures.P256_ORDER - s).to_bytes(32, 'big'))}"
    )


def test_minted_signatures_are_low_s_and_the_high_s_twin_is_refused(
    minter: TokenMinter, verifier: TokenVerifier, signer: LocalSigner
) -> None:
    for _ in range(16):  # ECDSA's s is random: both halves turn up in 16 tries (1 - 2**-16)
        token = minter.mint(account_id="a", session_id="s", llm_id="l").token
        raw = tokens.b64url_decode(token.rpartition(".")[2])
        assert int.from_bytes(raw[32:], "big") <= signatures.P256_ORDER // 2
        assert verifier.verify(token).account_id == "a"
        twin = _other_s(token)
        # (r, n - s) is a mathematically valid ECDSA signature of the same token...
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        der = encode_dss_signature(r, signatures.P256_ORDER - s)
        signer.private_key.public_key().verify(
            der, token.rpartition(".")[0].encode(), ec.ECDSA(hashes.SHA256())
        )
        # ...and the gateway still refuses it: one token, one signature.
        with pytest.raises(tokens.TokenSignatureInvalid):
            verifier.verify(twin)


@pytest.mark.parametrize(
    ("requested", "expected"), [(None, 600), (120, 120), (3600, 3600), (7200, 3600), (10**9, 3600)]
)
def test_lifetime_is_requested_capped_at_one_hour_default_ten_minutes(
    minter: TokenMinter, requested: int | None, expected: int
) -> None:
    minted = minter.mint(account_id="a", session_id="s", llm_id="l", ttl_seconds=requested)

    assert minted.claims.expires_at - minted.claims.issued_at == expected


@pytest.mark.parametrize("requested", [0, -5])
def test_non_positive_lifetime_is_a_bad_request(minter: TokenMinter, requested: int) -> None:
    with pytest.raises(tokens.BadRequest):
        minter.mint(account_id="a", session_id="s", llm_id="l", ttl_seconds=requested)


def test_each_mint_gets_a_fresh_jti(minter: TokenMinter) -> None:
    ids = {minter.mint(account_id="a", session_id="s", llm_id="l").claims.token_id for _ in range(50)}

    assert len(ids) == 50


def test_signer_returning_der_instead_of_raw_is_refused(clock: FakeClock) -> None:
    class DerSigner(LocalSigner):
        def sign(self, message: bytes) -> bytes:
            return b"\x30" + super().sign(message)[:70]

    with pytest.raises(ValueError, match="64-byte"):
        TokenMinter(DerSigner(), POLICY, clock).mint(account_id="a", session_id="s", llm_id="l")


def test_local_signer_satisfies_the_protocol(signer: LocalSigner) -> None:
    assert isinstance(signer, Signer)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"leeway_seconds": 61},
        {"leeway_seconds": -1},
        {"max_ttl_seconds": 3601},
        {"default_ttl_seconds": 0},
        {"issuer": ""},
    ],
)
def test_policy_refuses_unsafe_settings(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    with pytest.raises(ValueError, match=r"."):
        TokenPolicy(**{**base, **kwargs})


# --- SECURITY 11: algorithm, crit, typ, aud -----------------------------------------------------


def test_alg_none_is_rejected(signer: LocalSigner, verifier: TokenVerifier) -> None:
    unsigned = f"{b64json(good_header(signer, alg='none'))}.{b64json(valid_claims())}."
    unsigned_with_junk = unsigned + "A" * 86

    for token in (unsigned, unsigned_with_junk):
        with pytest.raises(TokenInvalid) as caught:
            verifier.verify(token)
        assert caught.value.status == 401


def test_hs256_signed_with_the_public_key_bytes_is_rejected(
    signer: LocalSigner, verifier: TokenVerifier
) -> None:
    pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_bytes = json.dumps(public_jwk(signer.public_key)).encode()
    for secret in (pem, jwk_bytes):
        signing_input = f"{b64json(good_header(signer, alg='HS256'))}.{b64json(valid_claims())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(TokenInvalid):
            verifier.verify(f"{signing_input}.{b64(mac)}")
        # Even padded to an ES256-sized signature, the alg pin refuses it first.
        with pytest.raises(TokenHeaderRejected):
            verifier.verify(f"{signing_input}.{b64(mac + mac)}")


@pytest.mark.parametrize("alg", [_DROP, "ES384", "RS256", "HS256", "es256", "EdDSA", "", None, ["ES256"]])
def test_alg_missing_or_not_matching_the_key_is_rejected(
    signer: LocalSigner, verifier: TokenVerifier, alg: Any
) -> None:
    token = forge(signer, good_header(signer, alg=alg), valid_claims())

    with pytest.raises(TokenHeaderRejected):
        verifier.verify(token)


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:unknown"], [], "exp"])
def test_any_crit_header_is_rejected(signer: LocalSigner, verifier: TokenVerifier, crit: Any) -> None:
    token = forge(signer, good_header(signer, crit=crit), valid_claims())

    with pytest.raises(TokenHeaderRejected):
        verifier.verify(token)


@pytest.mark.parametrize("typ", [_DROP, "JWT", "at+jwt", "LLMGW-SESSION+JWT", "", None])
def test_wrong_or_missing_typ_is_rejected(signer: LocalSigner, verifier: TokenVerifier, typ: Any) -> None:
    token = forge(signer, good_header(signer, typ=typ), valid_claims())

    with pytest.raises(TokenHeaderRejected):
        verifier.verify(token)


@pytest.mark.parametrize("aud", ["another-service", "", [AUDIENCE], [AUDIENCE, "other"], None])
def test_wrong_audience_is_rejected_even_when_correctly_signed(
    signer: LocalSigner, verifier: TokenVerifier, aud: Any
) -> None:
    token = forge(signer, good_header(signer), valid_claims(aud=aud))

    with pytest.raises(TokenClaimsInvalid):
        verifier.verify(token)


def test_token_issued_for_another_service_by_the_same_key_is_rejected(
    signer: LocalSigner, clock: FakeClock, verifier: TokenVerifier
) -> None:
    other_policy = TokenPolicy(issuer=ISSUER, audience="billing-service", token_type="billing+jwt")
    other = TokenMinter(signer, other_policy, clock).mint(account_id="a", session_id="s", llm_id="l")

    with pytest.raises(TokenHeaderRejected):
        verifier.verify(other.token)
    same_typ = TokenPolicy(issuer=ISSUER, audience="billing-service")
    other = TokenMinter(signer, same_typ, clock).mint(account_id="a", session_id="s", llm_id="l")
    with pytest.raises(TokenClaimsInvalid):
        verifier.verify(other.token)


def test_wrong_issuer_is_rejected(signer: LocalSigner, verifier: TokenVerifier) -> None:
    token = forge(signer, good_header(signer), valid_claims(iss="https://evil.example"))

    with pytest.raises(TokenClaimsInvalid):
        verifier.verify(token)


# --- SECURITY 12: required claims ---------------------------------------------------------------


@pytest.mark.parametrize("claim", tokens.REQUIRED_CLAIMS)
def test_token_missing_any_claim_is_rejected(
    signer: LocalSigner, verifier: TokenVerifier, claim: str
) -> None:
    token = forge(signer, good_header(signer), valid_claims(**{claim: _DROP}))

    with pytest.raises(TokenClaimsInvalid, match=claim):
        verifier.verify(token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": str(NOW + 600)},
        {"exp": float(NOW + 600)},
        {"iat": True},
        {"nbf": None},
        {"sub": 123},
        {"sid": ""},
        {"llm": ["llm_1"]},
        {"jti": "x" * 1000},
    ],
)
def test_claims_of_the_wrong_type_are_rejected(
    signer: LocalSigner, verifier: TokenVerifier, overrides: dict[str, Any]
) -> None:
    token = forge(signer, good_header(signer), valid_claims(**overrides))

    with pytest.raises(TokenClaimsInvalid):
        verifier.verify(token)


# --- SECURITY 13: time checks -------------------------------------------------------------------


def test_expired_beyond_leeway_is_rejected_but_within_leeway_accepted(
    signer: LocalSigner, verifier: TokenVerifier, clock: FakeClock
) -> None:
    token = forge(signer, good_header(signer), valid_claims())
    clock.now = NOW + 600 + 29
    assert verifier.verify(token).expires_at == NOW + 600

    clock.now = NOW + 600 + 30
    with pytest.raises(TokenExpired) as caught:
        verifier.verify(token)
    assert (caught.value.status, caught.value.code) == (401, "token_expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_before_or_issued_in_the_future_beyond_leeway_is_rejected(
    signer: LocalSigner, verifier: TokenVerifier, claim: str
) -> None:
    within = forge(signer, good_header(signer), valid_claims(**{claim: NOW + 30}))
    beyond = forge(signer, good_header(signer), valid_claims(**{claim: NOW + 31}))

    assert verifier.verify(within)
    with pytest.raises(TokenNotYetValid):
        verifier.verify(beyond)


def test_lifetime_over_maximum_is_rejected_even_if_correctly_signed(
    signer: LocalSigner, verifier: TokenVerifier
) -> None:
    at_max = forge(signer, good_header(signer), valid_claims(exp=NOW + 3600))
    over_max = forge(signer, good_header(signer), valid_claims(exp=NOW + 3601))

    assert verifier.verify(at_max)
    with pytest.raises(TokenLifetimeExceeded):
        verifier.verify(over_max)


def test_backdated_iat_cannot_hide_an_overlong_token(signer: LocalSigner, verifier: TokenVerifier) -> None:
    token = forge(signer, good_header(signer), valid_claims(iat=NOW - 86_400, nbf=NOW, exp=NOW + 600))

    with pytest.raises(TokenLifetimeExceeded):
        verifier.verify(token)


def test_exp_not_after_iat_is_rejected(signer: LocalSigner, verifier: TokenVerifier) -> None:
    token = forge(signer, good_header(signer), valid_claims(exp=NOW))

    with pytest.raises(TokenClaimsInvalid):
        verifier.verify(token)


# --- SECURITY 14: kid and key-location headers, no file or network access ------------------------


class _ForbiddenIO(BaseException):
    """BaseException so no ``except Exception`` in the code under test can swallow it."""


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise _ForbiddenIO(name)

        return _refuse

    for target, attr in [
        (builtins, "open"),
        (io, "open"),
        (os, "open"),
        (os, "stat"),
        (socket, "socket"),
        (socket, "create_connection"),
        (socket, "getaddrinfo"),
        (urllib.request, "urlopen"),
    ]:
        monkeypatch.setattr(target, attr, refuse(f"{target.__name__}.{attr}"))
    yield calls
    assert calls == []


def _jwk_of(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    return public_jwk(key)


@pytest.mark.parametrize(
    "header_overrides",
    [
        pytest.param({"kid": "not-a-known-kid"}, id="unknown-kid"),
        pytest.param({"kid": "../../../../dev/null"}, id="kid-path-traversal"),
        pytest.param({"kid": "../keys/other"}, id="kid-relative-path"),
        pytest.param({"kid": "x' OR '1'='1"}, id="kid-sql-quote"),
        pytest.param({"kid": "x'"}, id="kid-quote"),
        pytest.param({"kid": "a" * 129}, id="kid-too-long"),
        pytest.param({"kid": 1}, id="kid-not-string"),
        pytest.param({"kid": _DROP}, id="kid-missing"),
        pytest.param({"kid": "https://evil.example/key"}, id="kid-url"),
    ],
)
def test_bad_kid_gets_401_without_file_or_network_access(
    signer: LocalSigner, verifier: TokenVerifier, no_io: list[str], header_overrides: dict[str, Any]
) -> None:
    token = forge(signer, good_header(signer, **header_overrides), valid_claims())

    with pytest.raises(TokenUnknownKey) as caught:
        verifier.verify(token)
    assert caught.value.status == 401


@pytest.mark.parametrize("member", ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "b64", "cty", "zip"])
def test_key_location_headers_get_401_without_file_or_network_access(
    signer: LocalSigner, verifier: TokenVerifier, no_io: list[str], member: str
) -> None:
    attacker = LocalSigner()
    values: dict[str, Any] = {
        "jku": "https://evil.example/jwks.json",
        "jwk": _jwk_of(attacker.public_key),
        "x5u": "file:///etc/passwd",
        "x5c": ["MIIB"],
        "b64": False,
    }
    # Signed both by the real key (header check alone must refuse) and by the attacker's key.
    for signing_key in (signer, attacker):
        header = good_header(signer, **{member: values.get(member, "x")})
        with pytest.raises(TokenHeaderRejected):
            verifier.verify(forge(signing_key, header, valid_claims()))


def test_happy_path_also_needs_no_file_or_network_access(
    minter: TokenMinter, verifier: TokenVerifier, no_io: list[str]
) -> None:
    assert verifier.verify(minter.mint(account_id="a", session_id="s", llm_id="l").token)


# --- signature and structure --------------------------------------------------------------------


def test_tampered_payload_fails_the_signature(minter: TokenMinter, verifier: TokenVerifier) -> None:
    header, _, signature = minter.mint(account_id="a", session_id="s", llm_id="l").token.split(".")

    with pytest.raises(TokenSignatureInvalid):
        verifier.verify(f"{header}.{b64json(valid_claims(sub='acct_victim'))}.{signature}")


def test_token_signed_by_another_key_under_our_kid_fails(
    signer: LocalSigner, verifier: TokenVerifier
) -> None:
    token = forge(LocalSigner(), good_header(signer), valid_claims())

    with pytest.raises(TokenSignatureInvalid):
        verifier.verify(token)


def test_zero_and_non_canonical_signatures_are_rejected(minter: TokenMinter, verifier: TokenVerifier) -> None:
    token = minter.mint(account_id="a", session_id="s", llm_id="l").token
    signing_input, signature = token.rsplit(".", 1)
    stray_bits = signature[:-1] + ("B" if signature[-1] == "A" else chr(ord(signature[-1]) + 1))

    with pytest.raises(TokenSignatureInvalid):
        verifier.verify(f"{signing_input}.{b64(bytes(64))}")
    with pytest.raises(TokenMalformed):
        verifier.verify(f"{signing_input}.{stray_bits}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a" * 5000,
        "eyJ.eyJ." + "A" * 86,
        "!!!.###." + "A" * 86,
        b64json(["ES256"]) + "." + b64json({}) + "." + "A" * 86,
    ],
)
def test_malformed_tokens_are_rejected(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(token)


def test_non_string_token_is_rejected(verifier: TokenVerifier) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(b"a.b.c")  # type: ignore[arg-type]


def test_duplicate_header_members_are_rejected(signer: LocalSigner, verifier: TokenVerifier) -> None:
    typ, kid = tokens.TOKEN_TYPE, signer.key_id
    raw_header = f'{{"alg":"ES256","typ":"{typ}","kid":"{kid}","alg":"none"}}'
    signing_input = f"{b64(raw_header.encode())}.{b64json(valid_claims())}"

    with pytest.raises(TokenMalformed):
        verifier.verify(f"{signing_input}.{b64(signer.sign(signing_input.encode()))}")


def test_duplicate_claims_are_rejected(signer: LocalSigner, verifier: TokenVerifier) -> None:
    claims_json = json.dumps(valid_claims())[:-1] + ', "sub": "acct_victim"}'
    signing_input = f"{b64json(good_header(signer))}.{b64(claims_json.encode())}"

    with pytest.raises(TokenMalformed):
        verifier.verify(f"{signing_input}.{b64(signer.sign(signing_input.encode()))}")


def test_every_token_error_is_a_401_with_a_distinct_code() -> None:
    classes = [
        TokenInvalid,
        TokenMalformed,
        TokenHeaderRejected,
        TokenUnknownKey,
        TokenSignatureInvalid,
        TokenClaimsInvalid,
        TokenExpired,
        TokenNotYetValid,
        TokenLifetimeExceeded,
    ]

    assert all(issubclass(cls, Unauthorized) and cls.status == 401 for cls in classes)
    assert len({cls.code for cls in classes}) == len(classes)


# --- SECURITY 15: session check hook ---------------------------------


def test_session_check_runs_after_verification_and_can_revoke(
    signer: LocalSigner, clock: FakeClock, minter: TokenMinter
) -> None:
    seen: list[SessionClaims] = []
    revoked = {"sess_revoked"}

    def check(claims: SessionClaims) -> None:
        seen.append(claims)
        if claims.session_id in revoked:
            raise SessionRevoked("Session was revoked")

    keys = PublicKeySet({signer.key_id: signer.public_key})
    verifier = TokenVerifier(keys, POLICY, clock, session_check=check)
    live = minter.mint(account_id="a", session_id="sess_live", llm_id="l").token
    dead = minter.mint(account_id="a", session_id="sess_revoked", llm_id="l").token

    assert verifier.verify(live).session_id == "sess_live"
    with pytest.raises(SessionRevoked) as caught:
        verifier.verify(dead)
    assert isinstance(caught.value, Forbidden)
    with pytest.raises(TokenSignatureInvalid):
        verifier.verify(forge(LocalSigner(), good_header(signer), valid_claims(sid="sess_live")))
    assert [c.session_id for c in seen] == ["sess_live", "sess_revoked"]


# --- JWKS and rotation --------------------------------------------------------------------------


def test_jwks_with_two_keys_verifies_tokens_from_both(clock: FakeClock) -> None:
    old, new = LocalSigner(), LocalSigner()
    document = json.loads(json.dumps(jwks_document([public_jwk(old.public_key), public_jwk(new.public_key)])))
    verifier = TokenVerifier(PublicKeySet.from_jwks(document), POLICY, clock)

    for signer in (old, new):
        token = TokenMinter(signer, POLICY, clock).mint(account_id="a", session_id="s", llm_id="l").token
        assert verifier.verify(token).account_id == "a"
    assert [k["kid"] for k in document["keys"]] == [old.key_id, new.key_id]
    assert all(set(k) == {"kty", "crv", "x", "y", "kid", "alg", "use"} for k in document["keys"])


def test_rfc7638_thumbprint_matches_the_rfc_example_construction(signer: LocalSigner) -> None:
    jwk_dict = public_jwk(signer.public_key)
    x, y = jwk_dict["x"], jwk_dict["y"]
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}'

    assert jwk_dict["kid"] == b64(hashlib.sha256(canonical.encode()).digest())


def test_jwks_document_never_publishes_private_members(signer: LocalSigner) -> None:
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signer.private_key))
    private_jwk["kid"] = signer.key_id

    with pytest.raises(ValueError, match="private"):
        jwks_document([private_jwk])


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"keys": []},
        {"keys": "nope"},
        {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]},
        {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k", "x": "AA", "y": "AA"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)}]},
    ],
)
def test_bad_jwks_documents_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        PublicKeySet.from_jwks(document)


def test_duplicate_kids_are_refused(signer: LocalSigner) -> None:
    jwk_dict = public_jwk(signer.public_key)

    with pytest.raises(ValueError, match="kid"):
        jwks_document([jwk_dict, jwk_dict])
    with pytest.raises(ValueError, match="kid"):
        PublicKeySet.from_jwks({"keys": [jwk_dict, jwk_dict]})


def test_key_set_refuses_unsafe_kids(signer: LocalSigner) -> None:
    with pytest.raises(ValueError, match="kid"):
        PublicKeySet({"../etc": signer.public_key})
