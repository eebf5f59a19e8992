"""Session tokens: ES256 JWTs minted through a ``Signer`` and verified offline.

Pure domain code: no boto3, no environment reads, no file or network access. The signer (KMS in
production) and the public keys are handed in; verification uses only the cached key set, so a
stream request never waits on KMS (SECURITY.md 11–16, RFC 8725).

The verifier trusts no library defaults: it checks the raw header against an allow-list *before*
any key lookup or signature work, verifies the ES256 signature with ``cryptography`` against a
P-256 key object (so no algorithm or key-type confusion can arise), then validates every claim
itself against an injected clock. PyJWT's ``PyJWS.decode_complete`` did the same signature check
but re-parsed the token with a per-character Python loop (~120 µs per verify against ~85 µs here,
of which ~65 µs is the ECDSA math itself); tests use plain PyJWT as the interoperability oracle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from llm_gateway.domain.accounts import API_KEY_PREFIX
from llm_gateway.domain.signatures import HALF_ORDER, low_s
from llm_gateway.errors import BadRequest, Forbidden, Unauthorized

ALGORITHM: Final = "ES256"
TOKEN_TYPE: Final = "llmgw-session+jwt"  # noqa: S105 - a media type, not a secret
DEFAULT_TTL_SECONDS: Final = 600
MAX_TTL_SECONDS: Final = 3600
MAX_LEEWAY_SECONDS: Final = 60
DEFAULT_LEEWAY_SECONDS: Final = 30
# Header members we emit; anything else (crit, jku, jwk, x5u, x5c, x5t, b64, cty, zip…) is refused.
ALLOWED_HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "sid", "llm", "jti", "iat", "nbf", "exp")
# A kid is an opaque lookup key: no dots, slashes or quotes, so it can never become a path or query.
KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Our tokens are ~500 bytes; a hard cap bounds the work an attacker can make us do.
MAX_TOKEN_LENGTH: Final = 4096
MAX_ID_LENGTH: Final = 256
_SEGMENT = r"[A-Za-z0-9_-]+"
# ES256 signature: 64 bytes → exactly 86 unpadded base64url characters.
_TOKEN_PATTERN: Final = re.compile(rf"({_SEGMENT})\.({_SEGMENT})\.([A-Za-z0-9_-]{{86}})")
_RAW_SIGNATURE_LENGTH: Final = 64
_P256_COORDINATE_LENGTH: Final = 32
#: PyJWT's JWS, ES256 only (the header was already checked against our allow-list).
_JWS: Final = jwt.PyJWS(algorithms=[ALGORITHM])

Clock = Callable[[], float]
"""Seconds since the epoch; injected so tests control time (PyJWT's own checks cannot be)."""


# --- errors -------------------------------------------------------------------------------------


class TokenInvalid(Unauthorized):
    """Any session-token failure: always 401. Messages never echo token contents."""

    code = "token_invalid"


class TokenMalformed(TokenInvalid):
    code = "token_malformed"


#: What to send instead, for callers who sent something that is not a session token at all.
WHERE_SESSIONS_COME_FROM = (
    "The chat endpoint takes a session token: mint one with POST /v1/auth/session-token "
    "(Authorization: Bearer <account API key>) and send its sessionToken as Authorization: Bearer <sessionToken>."
)


class TokenHeaderRejected(TokenInvalid):
    """Wrong alg/typ, or a header member we never emit (crit, jku, jwk, x5u, x5c, …)."""

    code = "token_header_rejected"


class TokenUnknownKey(TokenInvalid):
    """The kid is malformed or not in the cached key set; never fetched from anywhere."""

    code = "token_unknown_key"


class TokenSignatureInvalid(TokenInvalid):
    code = "token_signature_invalid"


class TokenClaimsInvalid(TokenInvalid):
    """A claim is missing, has the wrong type, or names another issuer or audience."""

    code = "token_claims_invalid"


class TokenExpired(TokenInvalid):
    code = "token_expired"


class TokenNotYetValid(TokenInvalid):
    code = "token_not_yet_valid"


class TokenLifetimeExceeded(TokenInvalid):
    """``exp - iat`` is over the maximum TTL: refused even with a valid signature."""

    code = "token_lifetime_exceeded"


class SessionRevoked(Forbidden):
    """For session checks: the token is genuine but its session was revoked (DESIGN §3: 403)."""

    code = "session_revoked"


class SessionInactive(Forbidden):
    """For session checks: the session record expired, or its LLM was deleted or changed."""

    code = "session_inactive"


# --- ports --------------------------------------------------------------------------------------


@runtime_checkable
class Signer(Protocol):
    """Signs ``header.payload`` with an ES256 key held elsewhere (KMS in production)."""

    @property
    def key_id(self) -> str:
        """The JWT ``kid`` of the signing key (must match ``KID_PATTERN``)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the raw 64-byte r‖s ECDSA P-256 / SHA-256 signature of ``message``."""
        ...


class SessionCheck(Protocol):
    """Revocation hook run after the token verifies: looks at the session record.

    Raises ``SessionRevoked`` / ``SessionInactive`` (or any ``GatewayError``) when the session
    was revoked, expired, or its LLM was deleted, transferred or changed (SECURITY 15).
    """

    def __call__(self, claims: SessionClaims) -> None: ...


# --- claims and policy --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a session token asserts: ids and times only (no prompt, no secret)."""

    issuer: str
    audience: str
    account_id: str
    session_id: str
    llm_id: str
    token_id: str
    issued_at: int
    not_before: int
    expires_at: int

    def to_payload(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.account_id,
            "sid": self.session_id,
            "llm": self.llm_id,
            "jti": self.token_id,
            "iat": self.issued_at,
            "nbf": self.not_before,
            "exp": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Shared by minting and verification so both sides agree on iss, aud, typ and limits."""

    issuer: str
    audience: str
    token_type: str = TOKEN_TYPE
    default_ttl_seconds: int = DEFAULT_TTL_SECONDS
    max_ttl_seconds: int = MAX_TTL_SECONDS
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience or not self.token_type:
            raise ValueError("issuer, audience and token_type are required")
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be 0..{MAX_LEEWAY_SECONDS} seconds")
        if not 1 <= self.default_ttl_seconds <= self.max_ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"need 1 <= default_ttl <= max_ttl <= {MAX_TTL_SECONDS}")

    def lifetime(self, requested_seconds: int | None) -> int:
        """Requested lifetime capped at the maximum; the default when none was asked for."""
        if requested_seconds is None:
            return self.default_ttl_seconds
        if isinstance(requested_seconds, bool) or requested_seconds < 1:
            raise BadRequest("maxSessionLengthSeconds must be a positive integer")
        return min(int(requested_seconds), self.max_ttl_seconds)


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    claims: SessionClaims

    @property
    def expires_at(self) -> int:
        return self.claims.expires_at


# --- encoding helpers ---------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: the input must be canonical unpadded base64url (no padding, no stray bits)."""
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(decoded) != text:
        raise ValueError("non-canonical base64url")
    return decoded


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with repeated members are ambiguous across parsers: refuse them."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate JSON member")
    return result


def _json_object(segment: str) -> dict[str, Any]:
    value = json.loads(b64url_decode(segment), object_pairs_hook=_no_duplicate_keys)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# --- keys and JWKS ------------------------------------------------------------------------------


def _p256_public_key_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("JWK must be kty=EC, crv=P-256")
    if "d" in jwk:
        raise ValueError("JWK holds private key material")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ValueError("JWK must be alg=ES256, use=sig")
    x, y = b64url_decode(str(jwk.get("x", ""))), b64url_decode(str(jwk.get("y", "")))
    if len(x) != _P256_COORDINATE_LENGTH or len(y) != _P256_COORDINATE_LENGTH:
        raise ValueError("JWK coordinates must be 32 bytes")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    )
    return numbers.public_key()  # raises ValueError when the point is not on the curve


def public_key_from_spki_der(der: bytes) -> ec.EllipticCurvePublicKey:
    """Load a SubjectPublicKeyInfo (KMS ``GetPublicKey``) and insist it is P-256."""
    key = load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 public key")
    return key


def jwk_thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint: a kid that is unique per key and stable across rotations."""
    members = _jwk_members(key)
    canonical = _compact_json({k: members[k] for k in ("crv", "kty", "x", "y")})
    return b64url_encode(hashlib.sha256(canonical).digest())


def _jwk_members(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_P256_COORDINATE_LENGTH, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_P256_COORDINATE_LENGTH, "big")),
    }


def public_jwk(key: ec.EllipticCurvePublicKey, kid: str | None = None) -> dict[str, str]:
    """The public JWK we publish: ``kty, crv, x, y, kid, alg, use`` and nothing else."""
    kid = kid if kid is not None else jwk_thumbprint(key)
    if not KID_PATTERN.fullmatch(kid):
        raise ValueError("kid does not match the allowed pattern")
    return {**_jwk_members(key), "kid": kid, "alg": ALGORITHM, "use": "sig"}


def jwks_document(keys: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """``{"keys": [...]}`` for ``/.well-known/jwks.json``.

    Pass the current key and, during a rotation, the next (or previous) one: verifiers load every
    key listed, so publish a new key before signing with it and keep the old one until the
    longest-lived token it signed has expired (max TTL + leeway). Each entry is re-validated and
    rebuilt from its public numbers, so private members (``d``) or odd fields cannot leak out.
    """
    published: list[dict[str, str]] = []
    for jwk_dict in keys:
        kid = str(jwk_dict.get("kid", ""))
        if any(entry["kid"] == kid for entry in published):
            raise ValueError("duplicate kid in JWKS")
        published.append(public_jwk(_p256_public_key_from_jwk(jwk_dict), kid))
    if not published:
        raise ValueError("a JWKS needs at least one key")
    return {"keys": published}


class PublicKeySet:
    """Immutable kid → P-256 public key map, loaded once per container.

    An unknown kid is simply a miss: nothing is fetched, so a forged kid can never trigger file,
    network or KMS access (SECURITY 14). Rotation works by listing both keys.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        if not keys:
            raise ValueError("a key set needs at least one key")
        for kid, key in keys.items():
            if not KID_PATTERN.fullmatch(kid):
                raise ValueError("kid does not match the allowed pattern")
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError("every key must be an EC P-256 public key")
        self._keys: Mapping[str, ec.EllipticCurvePublicKey] = MappingProxyType(dict(keys))

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> PublicKeySet:
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError("JWKS must hold a 'keys' list")
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ValueError("JWKS entries must be objects")
            kid = entry.get("kid")
            if not isinstance(kid, str) or kid in keys:
                raise ValueError("every JWKS key needs a unique string kid")
            keys[kid] = _p256_public_key_from_jwk(entry)
        return cls(keys)

    def get(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        return jwks_document(public_jwk(key, kid) for kid, key in self._keys.items())


# --- minting ------------------------------------------------------------------------------------


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


class TokenMinter:
    """Builds and signs session tokens; one signer call (one KMS ``Sign``) per token."""

    def __init__(self, signer: Signer, policy: TokenPolicy, clock: Clock = time.time) -> None:
        # No signer access here: a KMS-backed signer loads its key on first mint, not at cold start.
        self._signer = signer
        self._policy = policy
        self._clock = clock

    def mint(
        self,
        *,
        account_id: str,
        session_id: str,
        llm_id: str,
        ttl_seconds: int | None = None,
        token_id: str | None = None,
    ) -> MintedToken:
        for name, value in (("account_id", account_id), ("session_id", session_id), ("llm_id", llm_id)):
            if not value or len(value) > MAX_ID_LENGTH:
                raise ValueError(f"{name} must be 1..{MAX_ID_LENGTH} characters")
        now = int(self._clock())
        claims = SessionClaims(
            issuer=self._policy.issuer,
            audience=self._policy.audience,
            account_id=account_id,
            session_id=session_id,
            llm_id=llm_id,
            token_id=token_id or new_token_id(),
            issued_at=now,
            not_before=now,
            expires_at=now + self._policy.lifetime(ttl_seconds),
        )
        kid = self._signer.key_id
        if not KID_PATTERN.fullmatch(kid):
            raise ValueError("signer key_id does not match the allowed kid pattern")
        header = {"alg": ALGORITHM, "typ": self._policy.token_type, "kid": kid}
        signing_input = (
            f"{b64url_encode(_compact_json(header))}.{b64url_encode(_compact_json(claims.to_payload()))}"
        )
        signature = self._signer.sign(signing_input.encode("ascii"))
        if len(signature) != _RAW_SIGNATURE_LENGTH:
            raise ValueError("signer must return a raw 64-byte r||s signature")
        return MintedToken(token=f"{signing_input}.{b64url_encode(low_s(signature))}", claims=claims)


# --- verification -------------------------------------------------------------------------------


def _check_signature(token: str, signature_segment: str, key: ec.EllipticCurvePublicKey) -> None:
    """ES256 (RFC 7518 §3.4) verified by PyJWT's JWS, with ``key`` (a P-256 key object, so no
    algorithm or key-type confusion). Our own rule first: only the low-s spelling, so a token has
    exactly one valid signature."""
    try:
        raw = b64url_decode(signature_segment)
    except (ValueError, binascii.Error) as exc:
        raise TokenMalformed("Session token signature is malformed") from exc
    if len(raw) != _RAW_SIGNATURE_LENGTH:
        raise TokenMalformed("Session token signature is malformed")
    if int.from_bytes(raw[_P256_COORDINATE_LENGTH:], "big") > HALF_ORDER:
        raise TokenSignatureInvalid("Session token signature is invalid")
    try:
        _JWS.decode(token, key=key, algorithms=[ALGORITHM])
    except jwt.InvalidSignatureError as exc:
        raise TokenSignatureInvalid("Session token signature is invalid") from exc
    except jwt.PyJWTError as exc:
        raise TokenMalformed("Session token is malformed") from exc


def _string_claim(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise TokenClaimsInvalid(f"claim '{name}' must be a non-empty string")
    return value


def _time_claim(payload: Mapping[str, Any], name: str) -> int:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenClaimsInvalid(f"claim '{name}' must be an integer NumericDate")
    return value


class TokenVerifier:
    """Offline ES256 verification against a cached ``PublicKeySet`` (runs on every stream call).

    Order matters: cheap structural and header checks first, then the signature, then claims,
    then the optional session check — so an unauthenticated token never reaches the session store.
    """

    def __init__(
        self,
        keys: PublicKeySet,
        policy: TokenPolicy,
        clock: Clock = time.time,
        *,
        session_check: SessionCheck | None = None,
    ) -> None:
        self._keys = keys
        self._policy = policy
        self._clock = clock
        self._session_check = session_check

    def verify(self, token: str) -> SessionClaims:
        """Return the claims of a genuine, current token or raise a ``TokenInvalid`` subclass."""
        match, key = self._check_structure_and_header(token)
        _check_signature(token, match.group(3), key)
        claims = self._check_claims(match.group(2))
        if self._session_check is not None:
            self._session_check(claims)
        return claims

    def _check_structure_and_header(self, token: str) -> tuple[re.Match[str], ec.EllipticCurvePublicKey]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenMalformed(f"Session token is malformed. {WHERE_SESSIONS_COME_FROM}")
        match = _TOKEN_PATTERN.fullmatch(token)
        if match is None:
            if token.startswith(API_KEY_PREFIX):
                raise TokenMalformed(
                    "This is an account API key, not a session token. " + WHERE_SESSIONS_COME_FROM
                )
            raise TokenMalformed(f"Session token is malformed. {WHERE_SESSIONS_COME_FROM}")
        try:
            header = _json_object(match.group(1))
        except (ValueError, binascii.Error) as exc:
            raise TokenMalformed("Session token header is malformed") from exc
        extra = header.keys() - ALLOWED_HEADER_MEMBERS
        if extra:
            # crit, jku, jwk, x5u, x5c, b64 … : we never emit them, so never honour them.
            raise TokenHeaderRejected("Session token header has unsupported members")
        if header.get("alg") != ALGORITHM:
            raise TokenHeaderRejected("Session token algorithm is not accepted")
        if header.get("typ") != self._policy.token_type:
            raise TokenHeaderRejected("Session token type is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise TokenUnknownKey("Session token key id is not accepted")
        key = self._keys.get(kid)
        if key is None:
            raise TokenUnknownKey("Session token key id is not accepted")
        return match, key

    def _check_claims(self, payload_segment: str) -> SessionClaims:
        try:
            payload = _json_object(payload_segment)
        except (ValueError, binascii.Error) as exc:
            raise TokenMalformed("Session token payload is malformed") from exc
        missing = [name for name in REQUIRED_CLAIMS if name not in payload]
        if missing:
            raise TokenClaimsInvalid(f"Session token lacks required claims: {', '.join(missing)}")
        claims = SessionClaims(
            issuer=_string_claim(payload, "iss"),
            audience=_string_claim(payload, "aud"),
            account_id=_string_claim(payload, "sub"),
            session_id=_string_claim(payload, "sid"),
            llm_id=_string_claim(payload, "llm"),
            token_id=_string_claim(payload, "jti"),
            issued_at=_time_claim(payload, "iat"),
            not_before=_time_claim(payload, "nbf"),
            expires_at=_time_claim(payload, "exp"),
        )
        if claims.issuer != self._policy.issuer:
            raise TokenClaimsInvalid("Session token issuer is not accepted")
        if claims.audience != self._policy.audience:
            raise TokenClaimsInvalid("Session token audience is not accepted")
        if claims.expires_at <= claims.issued_at or claims.expires_at <= claims.not_before:
            raise TokenClaimsInvalid("Session token times are inconsistent")
        if claims.expires_at - claims.issued_at > self._policy.max_ttl_seconds:
            raise TokenLifetimeExceeded("Session token lifetime exceeds the maximum")
        now = self._clock()
        leeway = self._policy.leeway_seconds
        if now >= claims.expires_at + leeway:
            raise TokenExpired("Session token has expired")
        if claims.not_before > now + leeway or claims.issued_at > now + leeway:
            raise TokenNotYetValid("Session token is not valid yet")
        return claims
