"""`/v1/subscriptions` (create, retrieve, list, update, cancel, resume) and `/v1/subscription_items`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from devstack.stripe_emulator.domain.catalog import Catalog
from devstack.stripe_emulator.domain.changes import diff
from devstack.stripe_emulator.domain.customers import merge_metadata
from devstack.stripe_emulator.domain.dunning import Dunning
from devstack.stripe_emulator.domain.invoices import PAID, Invoices
from devstack.stripe_emulator.domain.payment_methods import PaymentMethods
from devstack.stripe_emulator.domain.pending_updates import PendingUpdates
from devstack.stripe_emulator.domain.proration import Proration
from devstack.stripe_emulator.domain.renewals import Renewals
from devstack.stripe_emulator.domain.subscriptions import (
    ENDED_STATUSES,
    STATUSES,
    ItemSpec,
    Subscriptions,
    first_item,
)
from devstack.stripe_emulator.errors import card_declined, invalid, missing_param
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.forms import as_bool, as_int, as_list
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store, paginate

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
TRIAL_END_BEHAVIORS = ("create_invoice", "pause", "cancel")
# Stripe accepts only these alongside payment_behavior=pending_if_incomplete.
PENDING_UPDATE_PARAMS = frozenset(
    {"payment_behavior", "items", "proration_behavior", "proration_date", "expand", "trial_end", "billing_cycle_anchor"}
)


def _optional_int(params: dict[str, Any], key: str, param: str) -> int | None:
    raw = params.get(key)
    return as_int(raw, param) if raw not in (None, "") else None


def parse_pause(value: Any) -> Obj | None:
    """`pause_collection` (empty: resume collection)."""
    if value in ("", None):
        return None
    if not isinstance(value, dict) or value.get("behavior") not in PAUSE_BEHAVIORS:
        raise invalid(
            f"pause_collection[behavior] must be one of {', '.join(PAUSE_BEHAVIORS)}.",
            param="pause_collection[behavior]",
        )
    return {
        "behavior": value["behavior"],
        "resumes_at": _optional_int(value, "resumes_at", "pause_collection[resumes_at]"),
    }


def _update_behaviors(sub: Obj, p: dict[str, Any]) -> tuple[str, bool]:
    """(proration_behavior, pending?) of an update, validated."""
    if sub["status"] in ENDED_STATUSES:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.", param=None)
    behavior = p.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise invalid(f"Invalid proration_behavior: {behavior}", param="proration_behavior")
    payment_behavior = p.get("payment_behavior", "allow_incomplete")
    if payment_behavior not in PAYMENT_BEHAVIORS:
        raise invalid(f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior")
    if payment_behavior != "pending_if_incomplete":
        return behavior, False
    if set(p) - PENDING_UPDATE_PARAMS:
        bad = sorted(set(p) - PENDING_UPDATE_PARAMS)[0]
        raise invalid(f"You cannot pass `{bad}` with payment_behavior=pending_if_incomplete.", param=bad)
    if sub.get("pending_update"):
        raise invalid("This subscription already has a pending update.", param="payment_behavior")
    return "always_invoice", True  # a pending update is invoiced and paid immediately


def _set_cancellation(sub: Obj, p: dict[str, Any], now: int) -> None:
    if "cancel_at_period_end" in p:
        sub["cancel_at_period_end"] = as_bool(p["cancel_at_period_end"])
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = first_item(sub)["current_period_end"]
            sub["canceled_at"] = now
        else:
            sub["cancel_at"] = None
            sub["canceled_at"] = None
    elif "cancel_at" in p:
        sub["cancel_at"] = _optional_int(p, "cancel_at", "cancel_at")


def _end_trial_now(sub: Obj, now: int) -> None:
    for item in sub["items"]["data"]:
        item["current_period_end"] = now
    sub["trial_end"] = now


class SubscriptionsApi:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        time: BusinessTime,
        catalog: Catalog,
        payment_methods: PaymentMethods,
        invoices: Invoices,
        subscriptions: Subscriptions,
        proration: Proration,
        pending_updates: PendingUpdates,
        dunning: Dunning,
        renewals: Renewals,
        tick: Callable[[], None],
    ) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.catalog = catalog
        self.payment_methods = payment_methods
        self.invoices = invoices
        self.subscriptions = subscriptions
        self.proration = proration
        self.pending_updates = pending_updates
        self.dunning = dunning
        self.renewals = renewals
        self.tick = tick

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/subscriptions", self.list_),
            RouteSpec("POST", "/v1/subscriptions", self.create),
            RouteSpec("GET", "/v1/subscriptions/{id}", self.retrieve),
            RouteSpec("POST", "/v1/subscriptions/{id}", self.update),
            RouteSpec("DELETE", "/v1/subscriptions/{id}", self.cancel),
            RouteSpec("POST", "/v1/subscriptions/{id}/resume", self.resume),
            RouteSpec("GET", "/v1/subscription_items", self.list_items),
        ]

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "subscription"), req.expand)

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("subscription")
        status = req.params.get("status")
        if status and status not in (*STATUSES, "all", "ended"):
            raise invalid(f"Invalid status: {status}", param="status")
        if not status:
            objs = [o for o in objs if o["status"] not in ENDED_STATUSES]
        elif status == "ended":
            objs = [o for o in objs if o["status"] in ENDED_STATUSES]
        elif status != "all":
            objs = [o for o in objs if o["status"] == status]
        if req.params.get("customer"):
            objs = [o for o in objs if o["customer"] == req.params["customer"]]
        if req.params.get("price"):
            objs = [o for o in objs if any(i["price"]["id"] == req.params["price"] for i in o["items"]["data"])]
        return paginate(self.store, objs, req.params, "/v1/subscriptions", req.expand)

    # ---- create ---------------------------------------------------------------------------------------------

    def create(self, req: Request) -> Obj:
        """Licensed/metered items, trials (with trial_settings), payment_behavior."""
        p = req.params
        if not p.get("customer"):
            raise missing_param("customer")
        cus = self.store.get(str(p["customer"]), "customer", "customer")
        lines = self._item_specs(p)
        payment_behavior = p.get("payment_behavior", "allow_incomplete")
        if payment_behavior not in PAYMENT_BEHAVIORS or payment_behavior == "pending_if_incomplete":
            raise invalid(f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior")
        trial_days = as_int(p["trial_period_days"], "trial_period_days") if p.get("trial_period_days") else None
        end_behavior = ((p.get("trial_settings") or {}).get("end_behavior") or {}).get(
            "missing_payment_method", "create_invoice"
        )
        if end_behavior not in TRIAL_END_BEHAVIORS:
            raise invalid(
                "Invalid missing_payment_method.", param="trial_settings[end_behavior][missing_payment_method]"
            )
        sub = self.subscriptions.create(
            cus, lines, trial_days=trial_days, metadata=p.get("metadata"), missing_pm_behavior=end_behavior
        )
        if p.get("default_payment_method"):
            pm = self.store.get(str(p["default_payment_method"]), "payment_method", "default_payment_method")
            sub["default_payment_method"] = pm["id"]
        if trial_days or payment_behavior != "default_incomplete":
            # `off_session` defaults to false on subscription creation: the customer may be there to authenticate.
            behavior = self.payment_methods.charge_behavior(
                cus["id"], sub, off_session=as_bool(p.get("off_session", False))
            )
            _, outcome = self.subscriptions.start(sub, behavior)
            if outcome != PAID and payment_behavior == "error_if_incomplete":
                raise card_declined()
        else:
            self.subscriptions.invoice_current_period(sub, "subscription_create")
        return self.store.render(sub, req.expand)

    def _item_specs(self, p: dict[str, Any]) -> list[ItemSpec]:
        specs = [i for i in as_list(p.get("items")) if isinstance(i, dict)]
        if not specs:
            raise missing_param("items")
        lines: list[ItemSpec] = []
        for i, spec in enumerate(specs):
            price = self.catalog.price(str(spec.get("price")), f"items[{i}][price]")
            if price["type"] != "recurring":
                raise invalid("The price must be recurring.", param=f"items[{i}][price]")
            lines.append((price, _optional_int(spec, "quantity", f"items[{i}][quantity]")))
        return lines

    # ---- update ---------------------------------------------------------------------------------------------

    def update(self, req: Request) -> Obj:
        """Items (prorated), cancellation, metadata, default payment method, trial end, pause_collection."""
        sub = self.store.get(req.path_params["id"], "subscription")
        p = req.params
        behavior, pending = _update_behaviors(sub, p)
        saved_items = copy.deepcopy(sub["items"])
        saved_anchor = sub["billing_cycle_anchor"]
        before = copy.deepcopy(sub)
        invoice = self._change_items(sub, p, behavior)
        self._set_fields(sub, p)
        changes = diff(before, sub)
        if changes:
            self.events.emit("customer.subscription.updated", sub, changes)
        if invoice is not None:
            outcome = self.invoices.collect(invoice, sub, off_session=as_bool(p.get("off_session", False)))
            if pending and outcome != PAID:
                self.pending_updates.start(sub, saved_items, saved_anchor, invoice)
            else:
                self.dunning.after_collection(sub, invoice, outcome)
        if p.get("trial_end") == "now":
            self.tick()
        return self.store.render(sub, req.expand)

    def _change_items(self, sub: Obj, p: dict[str, Any], behavior: str) -> Obj | None:
        """Apply `items`; returns the invoice to collect now (always_invoice), else keeps the prorations pending."""
        items = [i for i in as_list(p.get("items")) if isinstance(i, dict)]
        pdate_in = _optional_int(p, "proration_date", "proration_date")
        if not items:
            return None
        changes, pdate = self.proration.plan(sub, items, pdate_in)
        lines = self.proration.lines(sub, changes, pdate) if behavior != "none" else []
        self.proration.apply(sub, changes, pdate)
        if lines and behavior == "always_invoice":
            return self.invoices.issue(sub, sub["customer"], lines, "subscription_update")
        if lines:
            self.store.side(sub["id"]).setdefault("pending_prorations", []).extend(lines)
        return None

    def _set_fields(self, sub: Obj, p: dict[str, Any]) -> None:
        _set_cancellation(sub, p, self.time.now())
        if "metadata" in p and isinstance(p["metadata"] or {}, dict):
            merge_metadata(sub, p["metadata"] or {})
        if p.get("default_payment_method"):
            sub["default_payment_method"] = self.store.get(
                str(p["default_payment_method"]), "payment_method", "default_payment_method"
            )["id"]
        if p.get("trial_end") == "now" and sub["status"] == "trialing":
            _end_trial_now(sub, self.time.now())
        if "cancellation_details" in p:
            sub["cancellation_details"].update(p["cancellation_details"] or {})
        if "pause_collection" in p:
            sub["pause_collection"] = parse_pause(p["pause_collection"])

    # ---- cancel, resume, items ------------------------------------------------------------------------------

    def cancel(self, req: Request) -> Obj:
        sub = self.store.get(req.path_params["id"], "subscription")
        if sub["status"] in ENDED_STATUSES:
            raise invalid(
                f"No such subscription: '{sub['id']}'... it was already canceled.", param="id", code="resource_missing"
            )
        self.subscriptions.cancel(sub)
        return self.store.render(sub, req.expand)

    def resume(self, req: Request) -> Obj:
        sub = self.store.get(req.path_params["id"], "subscription")
        if sub["status"] != "paused":
            raise invalid("Only paused subscriptions can be resumed.", param=None)
        self.renewals.resume(sub)
        return self.store.render(sub, req.expand)

    def list_items(self, req: Request) -> Obj:
        sub = self.store.get(str(req.params.get("subscription")), "subscription", "subscription")
        data: list[Any] = list(reversed(sub["items"]["data"]))
        return paginate(self.store, data, req.params, "/v1/subscription_items", req.expand)
