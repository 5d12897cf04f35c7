"""Stripe-looking ids and secrets generated at runtime."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def test_mode_id(prefix: str) -> str:
    """Ids like cs_test_... that test-mode Checkout uses."""
    return new_id(prefix + "_test", 40)


def webhook_secret() -> str:
    """Built by concatenation so no literal key material ever appears in the repository."""
    return "whsec" + "_" + secrets.token_hex(24)
