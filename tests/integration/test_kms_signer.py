"""KmsSigner against moto's KMS with a real ECC_NIST_P256 SIGN_VERIFY key (SECURITY.md 16)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from moto import mock_aws

from llm_gateway.adapters.aws import AwsClients
from llm_gateway.adapters.kms_signer import KmsSigner, der_to_raw_signature
from llm_gateway.domain.signatures import P256_ORDER
from llm_gateway.domain.tokens import (
    PublicKeySet,
    Signer,
    TokenMinter,
    TokenPolicy,
    TokenUnknownKey,
    TokenVerifier,
    jwk_thumbprint,
    jwks_document,
)

REGION = "us-east-1"
POLICY = TokenPolicy(issuer="https://gateway.example", audience="llm-gateway-stream")


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield AwsClients(region=REGION, access_key_id="testing", secret_access_key="testing").kms()


def create_signing_key(kms: Any, alias: str | None = None) -> str:
    key_id: str = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def test_kms_signature_is_raw_64_bytes_and_verifies_with_the_public_key(kms: Any) -> None:
    signer = KmsSigner(kms, create_signing_key(kms))

    signature = signer.sign(b"header.payload")

    assert len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    signer.public_key.verify(encode_dss_signature(r, s), b"header.payload", ec.ECDSA(hashes.SHA256()))


def test_kms_returns_either_s_and_the_signer_always_hands_out_the_low_one(kms: Any) -> None:
    key_id = create_signing_key(kms)
    signer = KmsSigner(kms, key_id)
    kms_high = 0
    for i in range(32):
        message = f"header.payload-{i}".encode()
        der = kms.sign(KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
        kms_high += decode_dss_signature(der["Signature"])[1] > P256_ORDER // 2
        raw = signer.sign(message)
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        assert s <= P256_ORDER // 2
        signer.public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    assert kms_high > 0, "KMS (moto) never returned a high s in 32 signatures: the check proves nothing"


def test_minted_token_verifies_with_plain_pyjwt_and_the_get_public_key_key(kms: Any) -> None:
    key_id = create_signing_key(kms, alias="alias/token-signing")
    signer = KmsSigner(kms, "alias/token-signing")
    minted = TokenMinter(signer, POLICY).mint(account_id="acct_1", session_id="sess_1", llm_id="llm_1")
    public_key = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])

    claims = jwt.decode(
        minted.token,
        public_key,  # type: ignore[arg-type]
        algorithms=["ES256"],
        audience=POLICY.audience,
        issuer=POLICY.issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )

    assert (claims["sub"], claims["sid"], claims["llm"]) == ("acct_1", "sess_1", "llm_1")
    signature = base64.urlsafe_b64decode(minted.token.split(".")[2] + "==")
    assert len(signature) == 64


def test_minted_token_verifies_with_our_verifier_through_the_jwks_document(kms: Any) -> None:
    signer = KmsSigner(kms, create_signing_key(kms))
    published = json.loads(json.dumps(jwks_document([signer.public_jwk()])))  # as served over HTTP
    verifier = TokenVerifier(PublicKeySet.from_jwks(published), POLICY)

    minted = TokenMinter(signer, POLICY).mint(account_id="acct_1", session_id="sess_1", llm_id="llm_1")

    assert verifier.verify(minted.token) == minted.claims
    assert published["keys"][0]["kid"] == signer.key_id == jwk_thumbprint(signer.public_key)
    assert set(published["keys"][0]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_rotation_jwks_with_two_kms_keys_accepts_both_and_nothing_else(kms: Any) -> None:
    old, new, stray = (KmsSigner(kms, create_signing_key(kms)) for _ in range(3))
    verifier = TokenVerifier(
        PublicKeySet.from_jwks(jwks_document([old.public_jwk(), new.public_jwk()])), POLICY
    )

    for signer in (old, new):
        token = TokenMinter(signer, POLICY).mint(account_id="a", session_id="s", llm_id="l").token
        assert verifier.verify(token).account_id == "a"
    assert len({old.key_id, new.key_id, stray.key_id}) == 3
    with pytest.raises(TokenUnknownKey):
        verifier.verify(TokenMinter(stray, POLICY).mint(account_id="a", session_id="s", llm_id="l").token)


def test_signer_keeps_signing_with_the_key_it_advertised_after_the_alias_moves(kms: Any) -> None:
    first = create_signing_key(kms, alias="alias/token-signing")
    signer = KmsSigner(kms, "alias/token-signing")
    kid = signer.key_id
    kms.update_alias(AliasName="alias/token-signing", TargetKeyId=create_signing_key(kms))

    token = TokenMinter(signer, POLICY).mint(account_id="a", session_id="s", llm_id="l").token

    first_key = load_der_public_key(kms.get_public_key(KeyId=first)["PublicKey"])
    assert jwt.get_unverified_header(token)["kid"] == kid
    jwt.decode(token, first_key, algorithms=["ES256"], audience=POLICY.audience)  # type: ignore[arg-type]


def test_kms_signer_satisfies_the_signer_protocol(kms: Any) -> None:
    assert isinstance(KmsSigner(kms, create_signing_key(kms)), Signer)


def test_non_p256_signing_key_is_refused(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]

    with pytest.raises(ValueError, match="ECC_NIST_P256"):
        _ = KmsSigner(kms, key_id).key_id


@pytest.mark.parametrize(("r", "s"), [(1, 2), (2**255 + 7, 1), (2**200, 2**250)])
def test_der_to_raw_left_pads_r_and_s_to_32_bytes(r: int, s: int) -> None:
    raw = der_to_raw_signature(encode_dss_signature(r, s))

    assert len(raw) == 64
    assert (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")) == (r, s)
