"""Fetch-latest: the objects as Stripe has them now, for the webhook, the success page and reconcile."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tollgate.adapters.stripe_client import stripe_errors

if TYPE_CHECKING:
    import stripe


class SdkStripeReader:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory, called per read: most webhook deliveries never fetch, so the client (and the secret read it
        # needs) is built only when one does, and rebuilt when the API key rotates.
        self._client = client

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        with stripe_errors("subscriptions.retrieve"):
            obj = self._client().v1.subscriptions.retrieve(subscription_id, {"expand": ["latest_invoice"]})
        return obj.to_dict()

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        with stripe_errors("checkout.sessions.retrieve"):
            obj = self._client().v1.checkout.sessions.retrieve(
                session_id, {"expand": ["subscription", "subscription.latest_invoice"]}
            )
        return obj.to_dict()

    def pricing_plan_subscription(self, pps_id: str) -> dict[str, Any]:
        # stripe 16.1.0 has no typed service for pricing-plan subscriptions (preview): a raw v2 GET.
        with stripe_errors("pricing_plan_subscriptions.retrieve"):
            obj = self._client().raw_request("get", f"/v2/billing/pricing_plan_subscriptions/{pps_id}")
        result: dict[str, Any] = obj.to_dict()
        return result

    def active_entitlement_keys(self, customer_id: str) -> tuple[str, ...]:
        with stripe_errors("entitlements.active_entitlements.list"):
            page = self._client().v1.entitlements.active_entitlements.list({"customer": customer_id, "limit": 100})
            keys = {e.lookup_key for e in page.auto_paging_iter()}
        return tuple(sorted(keys))
