"""The Stripe side of provisioning: observe the objects it manages (every page) and send one change at a time.

Errors keep Stripe's message (``ProvisioningRefused``): this runs at deploy time for an operator, and a deployment
must fail with the reason Stripe gave. Authentication failures never echo the message (it may name the key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from tollgate import errors
from tollgate.domain import provisioning as p
from tollgate.observability import logger
from tollgate.ports.stripe import Executed

PAGE = 100


@contextmanager
def provisioning_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError) as exc:
        logger.warning("stripe unavailable", operation=operation, error_type=type(exc).__name__)
        raise errors.UpstreamUnavailable(f"Stripe unavailable during {operation} ({type(exc).__name__})") from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise errors.ProvisioningRefused(
            f"Stripe refused the API key for {operation} ({type(exc).__name__}): check the key in the stack's secret"
        ) from exc
    except stripe.StripeError as exc:
        detail = ", ".join(
            f"{name} {value}" for name, value in (("code", exc.code), ("request", exc.request_id)) if value
        )
        param = getattr(exc, "param", None)
        where = f" (param {param})" if param else ""
        logger.error("stripe refused provisioning", operation=operation, code=exc.code, request_id=exc.request_id)
        raise errors.ProvisioningRefused(
            f"Stripe refused {operation}: {exc.user_message or type(exc).__name__}{where}"
            + (f" [{detail}]" if detail else "")
        ) from exc


def _dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}


class StripeProvisioningAccount:
    """``ports.stripe.StripeAccount`` over one StripeClient (from a factory: the key may rotate)."""

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        self._client = client

    # ---- observing -----------------------------------------------------------------------------------------

    def observe(self, owner: str) -> p.Account:
        client = self._client()
        with provisioning_errors("observing the account"):
            products = [self._product(o) for o in self._all(client.v1.products.list(params={"limit": PAGE}))]
            prices = [self._price(o) for o in self._all(client.v1.prices.list(params={"limit": PAGE}))]
            features = [
                self._feature(o)
                for archived in (False, True)
                for o in self._all(client.v1.entitlements.features.list(params={"limit": PAGE, "archived": archived}))
            ]
            owned = [pr.id for pr in products if pr.metadata.get(p.OWNER_KEY) == owner]
            links = [
                p.ObservedProductFeature(str(o["id"]), product, str(o["entitlement_feature"]["id"]))
                for product in owned
                for o in self._all(client.v1.products.features.list(product, params={"limit": PAGE}))
            ]
            meters = [
                p.ObservedMeter(str(o["id"]), str(o["event_name"]), o.get("status") == "active")
                for o in self._all(client.v1.billing.meters.list(params={"limit": PAGE}))
            ]
            portals = [
                p.ObservedPortal(str(o["id"]), bool(o.get("active")), p.observed_portal_settings(o), _metadata(o))
                for o in self._all(client.v1.billing_portal.configurations.list(params={"limit": PAGE}))
            ]
            endpoints = [
                *(self._webhook(o) for o in self._all(client.v1.webhook_endpoints.list(params={"limit": PAGE}))),
                *(
                    self._destination(o)
                    for o in self._all(
                        client.v2.core.event_destinations.list(
                            params={"limit": PAGE, "include": ["webhook_endpoint.url"]}
                        )
                    )
                ),
            ]
        return p.Account(
            livemode=False,
            features=tuple(features),
            meters=tuple(meters),
            products=tuple(products),
            prices=tuple(prices),
            product_features=tuple(links),
            portals=tuple(portals),
            endpoints=tuple(endpoints),
        )

    @staticmethod
    def _all(page: Any) -> Iterator[dict[str, Any]]:
        for obj in page.auto_paging_iter():
            yield _dict(obj)

    @staticmethod
    def _product(o: Mapping[str, Any]) -> p.ObservedProduct:
        return p.ObservedProduct(
            str(o["id"]), str(o.get("name")), o.get("description"), bool(o.get("active")), _metadata(o)
        )

    @staticmethod
    def _price(o: Mapping[str, Any]) -> p.ObservedPrice:
        recurring = o.get("recurring") or {}
        return p.ObservedPrice(
            id=str(o["id"]),
            product=str(o["product"]),
            lookup_key=o.get("lookup_key"),
            active=bool(o.get("active")),
            unit_amount=o.get("unit_amount"),
            currency=str(o.get("currency")),
            interval=recurring.get("interval"),
            interval_count=int(recurring.get("interval_count") or 1),
            meter=recurring.get("meter"),
            nickname=o.get("nickname"),
            metadata=_metadata(o),
        )

    @staticmethod
    def _feature(o: Mapping[str, Any]) -> p.ObservedFeature:
        return p.ObservedFeature(
            str(o["id"]), str(o["lookup_key"]), str(o.get("name")), bool(o.get("active")), _metadata(o)
        )

    @staticmethod
    def _webhook(o: Mapping[str, Any]) -> p.ObservedEndpoint:
        return p.ObservedEndpoint(
            id=str(o["id"]),
            kind="webhook_endpoint",
            url=o.get("url"),
            events=tuple(o.get("enabled_events") or ()),
            api_version=o.get("api_version"),
            enabled=o.get("status") == "enabled",
            metadata=_metadata(o),
        )

    @staticmethod
    def _destination(o: Mapping[str, Any]) -> p.ObservedEndpoint:
        source, status = _event_source(o)
        return p.ObservedEndpoint(
            id=str(o["id"]),
            kind="event_destination",
            url=(o.get("webhook_endpoint") or {}).get("url"),
            events=tuple(o.get("enabled_events") or ()),
            # Only an EventBridge destination's snapshot version matters (webhook destinations carry thin events).
            api_version=o.get("snapshot_api_version") if o.get("type") == "amazon_eventbridge" else None,
            enabled=o.get("status") == "enabled",
            metadata=_metadata(o),
            event_source=source,
            event_source_status=status,
        )

    # ---- changing ------------------------------------------------------------------------------------------

    def execute(
        self, change: p.Change, params: Mapping[str, Any], parent: str | None, idempotency_key: str
    ) -> Executed:
        client = self._client()
        options: Any = {"idempotency_key": idempotency_key}
        with provisioning_errors(change.line()):
            created = self._send(client, change, dict(params), parent, options)
        obj = _dict(created)
        return Executed(str(obj.get("id") or change.target), _signing_secret(change.kind, obj), _event_source(obj)[0])

    def _send(
        self, client: stripe.StripeClient, change: p.Change, params: dict[str, Any], parent: str | None, options: Any
    ) -> Any:
        kind, action, target = change.kind, change.action, change.target or ""
        if kind == "product_feature":
            links = client.v1.products.features
            if action == "attach":
                return links.create(str(parent), params, options)  # type: ignore[arg-type]
            return links.delete(str(parent), target, options=options)
        if kind == "webhook_endpoint":
            return self._webhook_endpoint(client, action, target, params, options)
        if kind == "event_destination":
            return self._event_destination(client, action, target, params, options)
        # Features, meters, products, prices and portal configurations: a create, or an update of the target.
        service: Any = {
            "feature": client.v1.entitlements.features,
            "meter": client.v1.billing.meters,
            "product": client.v1.products,
            "price": client.v1.prices,
            "portal_configuration": client.v1.billing_portal.configurations,
        }[kind]
        return service.create(params, options) if action == "create" else service.update(target, params, options)

    @staticmethod
    def _webhook_endpoint(
        client: stripe.StripeClient, action: str, target: str, params: dict[str, Any], options: Any
    ) -> Any:
        endpoints = client.v1.webhook_endpoints
        if action == "create":
            return endpoints.create(params, options)  # type: ignore[arg-type]
        if action == "disable":
            params = {"disabled": True}
        return endpoints.update(target, params, options)  # type: ignore[arg-type]

    @staticmethod
    def _event_destination(
        client: stripe.StripeClient, action: str, target: str, params: dict[str, Any], options: Any
    ) -> Any:
        destinations = client.v2.core.event_destinations
        if action == "create":
            return destinations.create(params, options)  # type: ignore[arg-type]
        if action == "disable":
            return destinations.disable(target, options=options)
        return destinations.update(target, params, options)  # type: ignore[arg-type]

    def set_metadata(self, kind: str, object_id: str, metadata: Mapping[str, str], idempotency_key: str) -> None:
        client = self._client()
        options: Any = {"idempotency_key": idempotency_key}
        with provisioning_errors(f"marking {kind} {object_id}"):
            if kind == "webhook_endpoint":
                client.v1.webhook_endpoints.update(object_id, {"metadata": dict(metadata)}, options)
            else:
                client.v2.core.event_destinations.update(object_id, {"metadata": dict(metadata)}, options)


def _event_source(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """An EventBridge destination's partner event source: the name from its ARN
    (``arn:aws:events:<region>::event-source/aws.partner/stripe.com/<id>``), and AWS's state for it."""
    bridge = obj.get("amazon_eventbridge") or {}
    arn = bridge.get("aws_event_source_arn")
    if not isinstance(arn, str) or ":event-source/" not in arn:
        return None, None
    return arn.split(":event-source/", 1)[1], bridge.get("aws_event_source_status")


def _signing_secret(kind: str, obj: Mapping[str, Any]) -> str | None:
    if kind == "webhook_endpoint":
        secret = obj.get("secret")
    elif kind == "event_destination":
        secret = (obj.get("webhook_endpoint") or {}).get("signing_secret")
    else:
        return None
    return str(secret) if secret else None


class StripePortalConfigurations:
    """``ports.stripe.PortalConfigurations``: the active configuration marked as this stack's."""

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        self._client = client

    def owned_configuration(self, owner: str) -> str | None:
        from tollgate.adapters.stripe_client import stripe_errors

        with stripe_errors("billing_portal.configurations.list"):
            page = self._client().v1.billing_portal.configurations.list(params={"active": True, "limit": PAGE})
            for conf in page.auto_paging_iter():
                marks = _metadata(_dict(conf))
                if marks.get(p.OWNER_KEY) == owner and marks.get(p.SLOT_KEY) == "portal":
                    return str(conf.id)
        return None
