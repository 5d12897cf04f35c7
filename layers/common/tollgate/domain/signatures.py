"""Stripe-Signature verification over the exact raw bytes, against every configured signing secret.

Done here rather than with ``stripe.WebhookSignature.verify_header`` because the SDK only rejects *old*
timestamps (future ones pass, and a tolerance of 0 disables the check) and decodes the body as UTF-8 first (a
non-UTF-8 body would raise an unexpected error instead of a rejection). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

MAX_HEADER_LENGTH = 4096
_HEX = frozenset("0123456789abcdef")


class SignatureRejected(Exception):
    """The delivery is not provably from Stripe. ``reason`` is a short metric dimension, never shown to callers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise SignatureRejected("missing_header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureRejected("malformed_header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
        # v0 and unknown schemes never count
    # As Stripe writes it: ASCII decimal digits, no sign, no leading zero (str.isdigit() alone also accepts digits
    # int() refuses, e.g. superscripts, which would raise a 5xx). Stripe's own libraries sign over the string as
    # sent, so "t=01790000000" must not verify against a signature made for "1790000000".
    stamp = timestamps[0] if len(timestamps) == 1 else ""
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12 or stamp != str(int(stamp)):
        raise SignatureRejected("malformed_timestamp")
    valid = [s for s in signatures if len(s) == 64 and set(s) <= _HEX]
    if not valid:
        raise SignatureRejected("no_v1_signature")
    return int(timestamps[0]), valid


def verify_signature(raw_body: bytes, header: str | None, secrets: Sequence[str], tolerance: int, now: int) -> int:
    """Return the index of the secret that signed the body; raise SignatureRejected otherwise."""
    if tolerance <= 0:
        raise ValueError("a webhook tolerance of 0 disables replay protection")
    if not secrets or any(not secret.strip() for secret in secrets):
        raise ValueError("no signing secret configured")  # callers fail closed before reaching this
    timestamp, signatures = parse_signature_header(header)
    if abs(now - timestamp) > tolerance:
        raise SignatureRejected("timestamp_outside_tolerance")
    signed = str(timestamp).encode() + b"." + raw_body
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        # Check every candidate without short-circuiting on the first mismatch.
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return index
    raise SignatureRejected("signature_mismatch")


def sign(raw_body: bytes, secret: str, timestamp: int) -> str:
    """A valid v1 header (used by the local stack and tests to play Stripe's part)."""
    signature = hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def fingerprint(secret: str) -> str:
    """A short digest naming a signing secret (which endpoint's secret is stored) without revealing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
