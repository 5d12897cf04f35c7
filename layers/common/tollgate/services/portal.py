"""Customer Portal sessions for the signed-in user.

The customer comes only from the caller's mapping (never from the body, query or a header), and the return URL
and portal configuration only from server configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.config import Settings
from tollgate.domain.customers import NO_BILLING_ACCOUNT
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory, RateLimiter, RequestWindows, SubscriptionRepository
from tollgate.ports.stripe import SessionGateway
from tollgate.services.idempotency import check_client_key, scoped_idempotency_key

#: Portal sessions are short-lived: a derived key only merges repeats within one minute of the first.
DERIVED_KEY_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class PortalOptions:
    return_url: str
    configuration_id: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PortalOptions:
        if not settings.portal_return_url:
            raise errors.ConfigurationError("PORTAL_RETURN_URL is required")
        return cls(return_url=settings.portal_return_url, configuration_id=settings.portal_configuration_id)


@dataclass(frozen=True)
class PortalService:
    options: PortalOptions
    directory: CustomerDirectory
    subscriptions: SubscriptionRepository
    rate_limiter: RateLimiter
    sessions: SessionGateway
    windows: RequestWindows
    clock: Callable[[], float] = time.time
    # The configuration Stripe provisioning made for this stack, used when none is configured explicitly.
    provisioned_configuration: Callable[[], str | None] = lambda: None

    def open(self, user_id: str, flow: str | None, client_key: str | None) -> str:
        check_client_key(client_key)
        self.rate_limiter.admit(user_id)
        key = scoped_idempotency_key(
            "portal",
            user_id,
            client_key,
            (flow or "",),
            windows=self.windows,
            now=self.clock(),
            window=DERIVED_KEY_WINDOW_SECONDS,
        )
        customer_id = self.directory.customer_for_user(user_id)  # None too when Stripe deleted it
        if customer_id is None:
            raise errors.NotFound(NO_BILLING_ACCOUNT)
        params: dict[str, Any] = {"customer": customer_id, "return_url": self.options.return_url}
        configuration = self.options.configuration_id or self.provisioned_configuration()
        if configuration:
            params["configuration"] = configuration
        if flow == "payment_method_update":
            params["flow_data"] = {"type": "payment_method_update"}
        elif flow is not None:
            params["flow_data"] = {
                "type": flow,
                flow: {"subscription": self._subscription(customer_id)},
            }
        try:
            url = self.sessions.create_portal_session(params, key)
        except errors.CustomerMissing:
            # Deleted in Stripe before its webhook arrived: record it; the user has no billing account now.
            logger.warning("mapped customer missing in Stripe", customer_id=customer_id)
            self.directory.mark_deleted(customer_id)
            raise
        logger.info("portal session created", customer_id=customer_id, flow=flow or "home")
        return url

    def _subscription(self, customer_id: str) -> str:
        state = self.subscriptions.current_for_customer(customer_id)
        if state is None or state.gone or state.kind != "subscription" or state.status in ("canceled",):
            raise errors.Conflict("no subscription to manage")
        return state.subscription_id
