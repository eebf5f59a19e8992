"""ES256 signatures have one accepted spelling: ECDSA's (r, s) and (r, n - s) both verify, so the
gateway signs and accepts only the low-s form (s ≤ n/2) and a token cannot be re-spelled."""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

#: The order n of the P-256 group.
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
HALF_ORDER: Final = P256_ORDER // 2


def low_s(signature: bytes) -> bytes:
    """A raw r‖s ES256 signature in its low-s form (s ≤ n/2): the one the verifier accepts."""
    s = int.from_bytes(signature[32:], "big")
    if s <= HALF_ORDER:
        return signature
    return signature[:32] + (P256_ORDER - s).to_bytes(32, "big")


def der_signature(raw: bytes) -> bytes:
    """The DER form ``cryptography`` verifies, of a raw 64-byte r‖s signature; ``ValueError`` for
    the high-s spelling."""
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if s > HALF_ORDER:
        raise ValueError("high-s signature")
    return encode_dss_signature(r, s)
