"""Stripe objects -> projected fields. Pure functions shared by the webhook, reconcile and the success-page check.

API 2026-10-28: a subscription's ``current_period_start/end`` live on its items; an invoice names its
subscription under ``parent.subscription_details.subscription``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.config import PlanCatalog
from tollgate.domain.subscriptions import FieldValue

PRICING_PLAN_STATUS = {"active": "active", "paused": "paused", "canceled": "canceled", "pending": "incomplete"}


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])  # an expanded object
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def int_or_none(value: Any) -> int | None:
    return _int(value)


def plan_key_for(catalog: PlanCatalog | None, price_id: str | None, lookup_key: str | None) -> str | None:
    if catalog is None:
        return None
    for plan in catalog.plans:
        # Any of a plan's seat prices names it (the portal may switch a customer to its yearly price).
        if (price_id and plan.price_id == price_id) or (lookup_key and lookup_key in plan.licensed_lookup_keys()):
            return plan.key
        if price_id and plan.pricing_plan == price_id:
            return plan.key
    return None


def subscription_fields(sub: Mapping[str, Any], catalog: PlanCatalog | None) -> dict[str, FieldValue]:
    items = ((sub.get("items") or {}).get("data")) or []
    first: Mapping[str, Any] = items[0] if items else {}
    price: Mapping[str, Any] = first.get("price") or {}
    ends = [e for e in (_int(i.get("current_period_end")) for i in items) if e is not None]
    starts = [s for s in (_int(i.get("current_period_start")) for i in items) if s is not None]
    price_id = _str(price.get("id")) if price else None
    latest = sub.get("latest_invoice")
    fields: dict[str, FieldValue] = {
        "kind": "subscription",
        "status": str(sub["status"]),
        "price_id": price_id,
        "plan_key": plan_key_for(catalog, price_id, _str(price.get("lookup_key")) if price else None),
        "quantity": _int(first.get("quantity")) or 1,
        "current_period_start": min(starts) if starts else None,
        "current_period_end": max(ends) if ends else None,
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": _int(sub.get("cancel_at")),
        "trial_end": _int(sub.get("trial_end")),
        "gone": False,
    }
    if isinstance(latest, Mapping):  # fetched with expand=["latest_invoice"]
        fields["latest_invoice_id"] = _str(latest.get("id"))
        fields["latest_invoice_status"] = _str(latest.get("status"))
        fields["latest_invoice_created"] = _int(latest.get("created"))
    return fields


def deleted_in_stripe_fields() -> dict[str, FieldValue]:
    return {"status": "canceled", "gone": True}


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return _str(details.get("subscription"))


#: An invoice item outlives any display of it: the latest invoice of a monthly or yearly subscription is younger.
INVOICE_RETENTION_SECONDS = 400 * 86_400


def invoice_fields(invoice: Mapping[str, Any], subscription_id: str) -> dict[str, FieldValue]:
    """One invoice event's item: which invoice of which subscription, its status and when the invoice was created."""
    created = _int(invoice.get("created"))
    return {
        "invoice_id": _str(invoice.get("id")),
        "subscription_id": subscription_id,
        "status": _str(invoice.get("status")),
        "created": created,
        "expires_at": created + INVOICE_RETENTION_SECONDS if created is not None else None,
    }


def pricing_plan_fields(pps: Mapping[str, Any], catalog: PlanCatalog | None) -> dict[str, FieldValue]:
    servicing = _str(pps.get("servicing_status")) or "pending"
    plan = _str(pps.get("pricing_plan"))
    return {
        "kind": "pricing_plan_subscription",
        "status": PRICING_PLAN_STATUS.get(servicing, "incomplete"),
        "pricing_plan_servicing": servicing,
        "pricing_plan_collection": _str(pps.get("collection_status")),
        "price_id": plan,
        "plan_key": plan_key_for(catalog, plan, None),
        "gone": False,
    }


def entitlement_keys(summary: Mapping[str, Any]) -> tuple[str, ...]:
    data = ((summary.get("entitlements") or {}).get("data")) or []
    keys = {str(e["lookup_key"]) for e in data if isinstance(e, Mapping) and isinstance(e.get("lookup_key"), str)}
    return tuple(sorted(keys))


def checkout_user_id(session: Mapping[str, Any]) -> str | None:
    metadata = session.get("metadata") or {}
    return _str(metadata.get("app_user_id")) or _str(session.get("client_reference_id"))


def subscription_observed_at(subscription: Mapping[str, Any]) -> int:
    """A lower bound, on Stripe's clock, of when this subscription object was read: the latest of the past moments it
    records (created, start, each item's period start, cancellation and end, the latest invoice's creation and
    status transitions). Future moments (period end, trial end, ``cancel_at``) are not bounds and never count.

    A fetch after a tie is newer than every event created before that moment, however late those arrive."""
    stamps: list[int | None] = [
        _int(subscription.get(name)) for name in ("created", "start_date", "canceled_at", "ended_at")
    ]
    for item in (subscription.get("items") or {}).get("data") or []:
        if isinstance(item, Mapping):
            stamps.append(_int(item.get("current_period_start")))
    invoice = subscription.get("latest_invoice")
    if isinstance(invoice, Mapping):
        stamps.append(_int(invoice.get("created")))
        transitions = invoice.get("status_transitions")
        if isinstance(transitions, Mapping):
            stamps += [_int(value) for value in transitions.values()]
    return max((s for s in stamps if s is not None), default=0)
