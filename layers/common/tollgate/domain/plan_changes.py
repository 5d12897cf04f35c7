"""Plan changes with a price preview: the records a preview and its application share, and the signed token.

The token is an HMAC-SHA256 over ``{id, user, exp}``; its key is derived from the Stripe API key, so no extra
secret is needed and rotating the Stripe key invalidates outstanding tokens (they live ten minutes anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

from tollgate import errors

TOKEN_TTL_SECONDS = 600
TOKEN_KEY_CONTEXT = b"tollgate/plan-change-token/v1"


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What a plan change needs from the live Stripe subscription."""

    id: str
    customer_id: str
    status: str
    item_id: str
    price_id: str
    quantity: int
    current_period_start: int
    current_period_end: int


@dataclass(frozen=True, slots=True)
class ProrationPreview:
    amount_due: int
    currency: str


@dataclass(frozen=True, slots=True)
class PendingChange:
    """The change a token stands for, stored server-side so the browser can alter nothing but the token."""

    token_id: str
    user_id: str
    subscription_id: str
    item_id: str
    plan_key: str
    price_id: str
    quantity: int
    proration_date: int
    amount_due: int
    currency: str
    expires_at: int
    # What the item held when the proration was previewed: the amount is only right from that state.
    from_price_id: str
    from_quantity: int


class TokenSigner:
    """Signs and verifies plan-change tokens. The key may be a callable, read on every use, so a signer built once
    per execution environment follows a rotated Stripe key."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key = key if callable(key) else (lambda: key)

    @classmethod
    def from_stripe_key(cls, api_key: Callable[[], str]) -> TokenSigner:
        return cls(lambda: hmac.new(api_key().encode(), TOKEN_KEY_CONTEXT, hashlib.sha256).digest())

    def sign(self, token_id: str, user_id: str, expires_at: int) -> str:
        payload = _b64(json.dumps({"id": token_id, "sub": user_id, "exp": expires_at}, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def verify(self, token: str, user_id: str, now: int) -> str:
        """The token id, if the token is ours, unexpired and issued to this user."""
        payload, _, signature = token.partition(".")
        try:
            valid = hmac.compare_digest(_unb64(signature), self._mac(payload))
            claims = json.loads(_unb64(payload)) if valid else None
        except (ValueError, UnicodeDecodeError):
            valid, claims = False, None
        if not valid or not isinstance(claims, dict):
            raise errors.Forbidden("invalid plan change token")
        if claims.get("sub") != user_id:
            raise errors.Forbidden("invalid plan change token")
        expires = claims.get("exp")
        if not isinstance(expires, int) or now >= expires:
            raise errors.Conflict("the preview expired: preview the change again")
        token_id = claims.get("id")
        if not isinstance(token_id, str):
            raise errors.Forbidden("invalid plan change token")
        return token_id

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key(), payload.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
