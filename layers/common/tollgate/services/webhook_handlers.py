"""Event type -> small handler. A handler reads the event (and, for thin events or ties, the current object from
Stripe) and returns its effects (tollgate.domain.effects); the webhook service commits them, with their
announcements, in the event's one write (or under the event ledger's lease).

Handlers never write: they describe watermark-guarded writes, a customer link, domain events to announce and a
``refetch`` that settles a same-second tie by reading the object from Stripe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tollgate import errors
from tollgate.config import PlanCatalog
from tollgate.domain import projection
from tollgate.domain.effects import Effects, MeterErrorReport
from tollgate.domain.events import DomainEvent, domain_event
from tollgate.domain.stripe_events import SnapshotEvent, StripeEvent, ThinEvent
from tollgate.domain.subscriptions import ENTITLEMENTS_SK, StateWrite, Watermark, invoice_sk, subscription_sk
from tollgate.ports.storage import SubscriptionOwners
from tollgate.ports.stripe import StripeReader


@dataclass(frozen=True, slots=True)
class HandlerContext:
    reader: StripeReader
    catalog: PlanCatalog | None
    owners: SubscriptionOwners | None = None


class Handler(Protocol):
    def __call__(self, event: Any, ctx: HandlerContext) -> Effects: ...


# ----------------------------------------------------------------------------------------------- helpers
def _obj(event: SnapshotEvent) -> Mapping[str, Any]:
    return event.data.object


def _customer_of(obj: Mapping[str, Any]) -> str:
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    if not isinstance(customer, str) or not customer:
        raise errors.InvalidRequest("event object has no customer")
    return customer


def _announce(name: str, event: StripeEvent, created: int, **fields: Any) -> DomainEvent:
    return domain_event(name, event.id, created, **fields)


def fetched_subscription_write(
    ctx: HandlerContext, subscription_id: str, customer_id: str, watermark: Watermark
) -> StateWrite:
    """The subscription as Stripe has it now; a 404 is recorded as gone so retries stop.

    The write is ordered at the later of the event's second and the moment the fetched object shows it was read
    (``projection.subscription_observed_at``): Stripe may have moved on since the event, and a fetch stamped with
    an old event's second would let the events in between, arriving later, roll the state back."""
    try:
        current = ctx.reader.subscription(subscription_id)
        fields = projection.subscription_fields(current, ctx.catalog)
        observed = projection.subscription_observed_at(current)
    except errors.UpstreamNotFound:
        fields = projection.deleted_in_stripe_fields()
        observed = 0
    if observed > watermark.created:
        watermark = Watermark(observed, watermark.rank, watermark.event_id)
    return StateWrite(customer_id, subscription_sk(subscription_id), "subscription", fields, watermark)


# ----------------------------------------------------------------------------------------------- subscriptions
def subscription_snapshot(event: SnapshotEvent, ctx: HandlerContext) -> Effects:
    sub = _obj(event)
    customer_id, sub_id = _customer_of(sub), str(sub["id"])
    fields = projection.subscription_fields(sub, ctx.catalog)
    if event.type == "customer.subscription.deleted":
        fields["status"] = "canceled"
    write = StateWrite(
        customer_id, subscription_sk(sub_id), "subscription", fields, Watermark(event.created, 1, event.id)
    )
    effects = Effects(
        writes=[write],
        refetch=lambda: [fetched_subscription_write(ctx, sub_id, customer_id, Watermark(event.created, 2, event.id))],
    )
    user_id = projection.checkout_user_id({"metadata": sub.get("metadata") or {}})
    if user_id:
        effects.link = (user_id, customer_id)
    if event.type == "customer.subscription.trial_will_end":
        effects.announcements.append(
            _announce(
                "trial.ending",
                event,
                event.created,
                customer_id=customer_id,
                subscription_id=sub_id,
                user_id=user_id,
                data={"trial_end": fields.get("trial_end")},
            )
        )
    return effects


# ----------------------------------------------------------------------------------------------- invoices
_INVOICE_ANNOUNCEMENTS = {
    "invoice.paid": "payment.succeeded",
    "invoice.payment_failed": "payment.failed",
    "invoice.payment_action_required": "payment.action_required",
    "invoice.marked_uncollectible": "payment.uncollectible",
}


def invoice_event(event: SnapshotEvent, _ctx: HandlerContext) -> Effects:
    invoice = _obj(event)
    customer_id = _customer_of(invoice)
    sub_id = projection.invoice_subscription_id(invoice)
    effects = Effects()
    effects.announcements.append(
        _announce(
            _INVOICE_ANNOUNCEMENTS[event.type],
            event,
            event.created,
            customer_id=customer_id,
            subscription_id=sub_id,
            data={
                "invoice_id": invoice.get("id"),
                "amount_due": invoice.get("amount_due"),
                "currency": invoice.get("currency"),
                "hosted_invoice_url": invoice.get("hosted_invoice_url"),
                "attempt_count": invoice.get("attempt_count"),
            },
        )
    )
    if sub_id is None or not isinstance(invoice.get("id"), str):
        return effects  # a one-off invoice: nothing to project
    # The event's own item (see domain.subscriptions.invoice_sk): an event about last month's invoice, or an older
    # attempt at this one, is never stale, and its payment notice is committed with it.
    effects.writes.append(
        StateWrite(
            customer_id,
            invoice_sk(str(invoice["id"]), event.id),
            "invoice",
            projection.invoice_fields(invoice, sub_id),
            Watermark(event.created, 1, event.id),
        )
    )
    return effects


def invoice_upcoming(event: SnapshotEvent, _ctx: HandlerContext) -> Effects:
    # An upcoming invoice is a preview (no id, nothing to project): tell the application, nothing else.
    invoice = _obj(event)
    return Effects(
        announcements=[
            _announce(
                "invoice.upcoming",
                event,
                event.created,
                customer_id=_customer_of(invoice),
                subscription_id=projection.invoice_subscription_id(invoice),
                data={"amount_due": invoice.get("amount_due"), "currency": invoice.get("currency")},
            )
        ]
    )


# ----------------------------------------------------------------------------------------------- checkout
def checkout_completed(event: SnapshotEvent, ctx: HandlerContext) -> Effects:
    """Link the user to the customer and project the subscription as Stripe has it now (the session only names
    it). The success-page check runs the same projection, so whichever comes first grants access."""
    session = _obj(event)
    return checkout_session_effects(session, ctx, Watermark(event.created, 2, event.id))


def checkout_session_effects(session: Mapping[str, Any], ctx: HandlerContext, watermark: Watermark) -> Effects:
    effects = Effects()
    customer = session.get("customer")
    customer_id = customer.get("id") if isinstance(customer, Mapping) else customer
    user_id = projection.checkout_user_id(session)
    if isinstance(customer_id, str) and user_id:
        effects.link = (user_id, customer_id)
    sub = session.get("subscription")
    sub_id = sub.get("id") if isinstance(sub, Mapping) else sub
    pps_id = session.get("pricing_plan_subscription")
    if isinstance(customer_id, str) and isinstance(sub, Mapping) and isinstance(sub_id, str) and "status" in sub:
        # Expanded by the success-page fetch: already the current object, no second read.
        fields = projection.subscription_fields(sub, ctx.catalog)
        effects.writes.append(StateWrite(customer_id, subscription_sk(sub_id), "subscription", fields, watermark))
    elif isinstance(customer_id, str) and isinstance(sub_id, str):
        effects.writes.append(fetched_subscription_write(ctx, sub_id, customer_id, watermark))
    elif isinstance(customer_id, str) and isinstance(pps_id, str):
        effects.writes.append(fetched_pricing_plan_write(ctx, pps_id, customer_id, watermark))
    return effects


def checkout_async_succeeded(event: SnapshotEvent, ctx: HandlerContext) -> Effects:
    return checkout_completed(event, ctx)


def checkout_not_paid(event: SnapshotEvent, _ctx: HandlerContext) -> Effects:
    session = _obj(event)
    name = "checkout.payment_failed" if event.type.endswith("async_payment_failed") else "checkout.expired"
    customer = session.get("customer")
    return Effects(
        announcements=[
            _announce(
                name,
                event,
                event.created,
                customer_id=customer if isinstance(customer, str) else None,
                user_id=projection.checkout_user_id(session),
                data={"checkout_session_id": session.get("id")},
            )
        ]
    )


# ----------------------------------------------------------------------------------------------- customers
def customer_deleted(event: SnapshotEvent, _ctx: HandlerContext) -> Effects:
    customer_id = str(_obj(event)["id"])
    return Effects(
        customer_deleted=customer_id,
        announcements=[_announce("customer.deleted", event, event.created, customer_id=customer_id)],
    )


def entitlements_updated(event: SnapshotEvent, ctx: HandlerContext) -> Effects:
    summary = _obj(event)
    customer_id = _customer_of(summary)

    def write(keys: tuple[str, ...], rank: int) -> StateWrite:
        return StateWrite(
            customer_id, ENTITLEMENTS_SK, "entitlements", {"features": keys}, Watermark(event.created, rank, event.id)
        )

    return Effects(
        writes=[write(projection.entitlement_keys(summary), 1)],
        refetch=lambda: [write(ctx.reader.active_entitlement_keys(customer_id), 2)],
        announcements=[_announce("entitlements.updated", event, event.created, customer_id=customer_id)],
        # "The features changed": a newer summary already applied, and its own write announced it.
        announce_when_stale=False,
    )


# ----------------------------------------------------------------------------------------------- thin events
def fetched_pricing_plan_write(ctx: HandlerContext, pps_id: str, customer_id: str, watermark: Watermark) -> StateWrite:
    try:
        fields = projection.pricing_plan_fields(ctx.reader.pricing_plan_subscription(pps_id), ctx.catalog)
    except errors.UpstreamNotFound:
        fields = {**projection.deleted_in_stripe_fields(), "kind": "pricing_plan_subscription"}
    return StateWrite(customer_id, subscription_sk(pps_id), "subscription", fields, watermark)


def pricing_plan_subscription_event(event: ThinEvent, ctx: HandlerContext) -> Effects:
    """Thin: always fetch the current object (a 404 is recorded as gone; a 5xx propagates so Stripe retries)."""
    if event.related_object is None:
        raise errors.InvalidRequest("thin event without related_object")
    pps_id = event.related_object.id
    watermark = Watermark(event.created_epoch, 2, event.id)
    try:
        current = ctx.reader.pricing_plan_subscription(pps_id)
    except errors.UpstreamNotFound:
        current = None
    if current is None:
        # Gone before we looked: recorded as gone on the customer an earlier event projected it for. Never seen
        # before: there is nothing of ours to mark, so nothing is written (and Stripe gets its 2xx).
        owner = ctx.owners.owner_of(pps_id) if ctx.owners is not None else None
        if owner is None:
            return Effects()
        gone = {**projection.deleted_in_stripe_fields(), "kind": "pricing_plan_subscription"}
        return Effects(writes=[StateWrite(owner, subscription_sk(pps_id), "subscription", gone, watermark)])
    customer_id = _customer_of(current)
    fields = projection.pricing_plan_fields(current, ctx.catalog)
    write = StateWrite(customer_id, subscription_sk(pps_id), "subscription", fields, watermark)
    effects = Effects(writes=[write], owner=(pps_id, customer_id))
    if event.type.endswith("collection_awaiting_customer_action"):
        effects.announcements.append(
            _announce(
                "payment.action_required", event, event.created_epoch, customer_id=customer_id, subscription_id=pps_id
            )
        )
    user_id = projection.checkout_user_id({"metadata": current.get("metadata") or {}})
    if user_id:
        effects.link = (user_id, customer_id)
    return effects


def meter_error_report(event: ThinEvent, _ctx: HandlerContext) -> Effects:
    data = event.data or {}
    reason = data.get("reason") or {}
    types = [t for t in reason.get("error_types") or [] if isinstance(t, Mapping)]
    identifiers = tuple(
        str((s.get("request") or {}).get("identifier"))
        for t in types
        for s in (t.get("sample_errors") or [])
        if isinstance(s, Mapping) and (s.get("request") or {}).get("identifier")
    )
    meter_id = event.related_object.id if event.related_object else "unknown"
    report = MeterErrorReport(
        meter_id=meter_id,
        event_id=event.id,
        occurred_at=event.created_epoch,
        error_codes=tuple(str(t.get("code")) for t in types),
        error_count=int(reason.get("error_count") or 0),
        identifiers=identifiers[:20],
        data=data,
    )
    return Effects(
        meter_error=report,
        announcements=[
            _announce(
                "usage.meter_error",
                event,
                event.created_epoch,
                data={"meter_id": meter_id, "error_codes": list(report.error_codes), "error_count": report.error_count},
            )
        ],
    )


def stripe_health(event: ThinEvent, _ctx: HandlerContext) -> Effects:
    return Effects(announcements=[_announce("stripe.health", event, event.created_epoch, data={"type": event.type})])


SNAPSHOT_HANDLERS: dict[str, Callable[[SnapshotEvent, HandlerContext], Effects]] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_async_succeeded,
    "checkout.session.async_payment_failed": checkout_not_paid,
    "checkout.session.expired": checkout_not_paid,
    **{
        f"customer.subscription.{t}": subscription_snapshot
        for t in (
            "created",
            "updated",
            "deleted",
            "paused",
            "resumed",
            "trial_will_end",
            "pending_update_applied",
            "pending_update_expired",
        )
    },
    "invoice.paid": invoice_event,
    "invoice.payment_failed": invoice_event,
    "invoice.payment_action_required": invoice_event,
    "invoice.marked_uncollectible": invoice_event,
    "invoice.upcoming": invoice_upcoming,
    "customer.deleted": customer_deleted,
    "entitlements.active_entitlement_summary.updated": entitlements_updated,
}

THIN_HANDLERS: dict[str, Callable[[ThinEvent, HandlerContext], Effects]] = {
    **{
        f"v2.billing.pricing_plan_subscription.{t}": pricing_plan_subscription_event
        for t in (
            "servicing_activated",
            "servicing_paused",
            "servicing_canceled",
            "collection_current",
            "collection_awaiting_customer_action",
            "collection_paused",
        )
    },
    "v1.billing.meter.error_report_triggered": meter_error_report,
}

HEALTH_EVENT_PREFIX = "v2.core.health."

#: Handlers that read Stripe before they know their writes: they always run under the ledger's lease.
FETCHING_HANDLERS: frozenset[Callable[..., Effects]] = frozenset({checkout_completed, checkout_async_succeeded})


def handler_for(event: StripeEvent) -> Callable[[Any, HandlerContext], Effects] | None:
    if isinstance(event, SnapshotEvent):
        return SNAPSHOT_HANDLERS.get(event.type)
    if event.type.startswith(HEALTH_EVENT_PREFIX):
        return stripe_health
    return THIN_HANDLERS.get(event.type)
