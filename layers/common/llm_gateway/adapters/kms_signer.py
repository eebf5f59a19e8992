"""ES256 signing with a KMS ``ECC_NIST_P256`` SIGN_VERIFY key (the ``Signer`` of domain/tokens).

KMS returns DER-encoded ECDSA signatures; JWS ES256 wants the raw 64-byte r‖s (RFC 7518 §3.4),
so the conversion lives here. The private key never leaves KMS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from llm_gateway.domain.signatures import low_s
from llm_gateway.domain.tokens import jwk_thumbprint, public_jwk, public_key_from_spki_der
from llm_gateway.errors import SigningThrottled

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"
KEY_SPEC: Final = "ECC_NIST_P256"
_COORDINATE_LENGTH = 32
# KMS refuses RAW messages over 4096 bytes; fail with a clear error instead of a ValidationException.
_MAX_RAW_MESSAGE = 4096
#: KMS answers these when the account's asymmetric Sign quota (ECC: 300 req/s, shared) is spent.
_THROTTLED = frozenset({"ThrottlingException", "LimitExceededException"})


def der_to_raw_signature(der: bytes) -> bytes:
    """DER ``SEQUENCE {r, s}`` → r‖s, each left-padded to 32 bytes (what JWS ES256 expects), in the
    low-s form: KMS returns either s or n - s (both verify), the token verifier accepts only s ≤ n/2."""
    r, s = decode_dss_signature(der)
    return low_s(r.to_bytes(_COORDINATE_LENGTH, "big") + s.to_bytes(_COORDINATE_LENGTH, "big"))


class KmsSigner:
    """``Signer`` backed by KMS ``Sign``; the public key is read once per container.

    ``key_id`` may be an alias. It is resolved to the key ARN on first use and every later
    ``Sign`` names that ARN, so repointing the alias during a rotation can never make this
    container sign with one key while advertising the other key's ``kid``.
    """

    def __init__(self, kms_client: KMSClient, key_id: str) -> None:
        self._kms = kms_client
        self._configured_key_id = key_id
        self._key_arn: str | None = None
        self._public_key: ec.EllipticCurvePublicKey | None = None
        self._kid: str | None = None

    def _load(self) -> tuple[str, ec.EllipticCurvePublicKey, str]:
        if self._key_arn is None or self._public_key is None or self._kid is None:
            response = self._kms.get_public_key(KeyId=self._configured_key_id)
            # KMS returns KeySpec and the deprecated CustomerMasterKeySpec; moto 5.2.5 only the latter.
            key_spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
            if key_spec != KEY_SPEC or response.get("KeyUsage") != "SIGN_VERIFY":
                raise ValueError("token signing key must be an ECC_NIST_P256 SIGN_VERIFY KMS key")
            if SIGNING_ALGORITHM not in response.get("SigningAlgorithms", []):
                raise ValueError("token signing key does not support ECDSA_SHA_256")
            public_key = public_key_from_spki_der(response["PublicKey"])
            self._key_arn, self._public_key = response["KeyId"], public_key
            self._kid = jwk_thumbprint(public_key)
        return self._key_arn, self._public_key, self._kid

    @property
    def key_id(self) -> str:
        """The JWT ``kid``: the RFC 7638 thumbprint of the public key (unique per KMS key)."""
        return self._load()[2]

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._load()[1]

    def sign(self, message: bytes) -> bytes:
        if len(message) > _MAX_RAW_MESSAGE:
            raise ValueError("message too long for a KMS RAW signature")
        key_arn = self._load()[0]
        try:
            response = self._kms.sign(
                KeyId=key_arn, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _THROTTLED:
                raise SigningThrottled() from None
            raise
        return der_to_raw_signature(response["Signature"])

    def public_jwk(self) -> dict[str, str]:
        """The JWK to publish in ``/.well-known/jwks.json`` (see ``tokens.jwks_document``)."""
        _, public_key, kid = self._load()
        return public_jwk(public_key, kid)
