"""`/v1/invoices`: retrieve, list, lines, pay, void, mark_uncollectible, and `create_preview` (real proration math)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.domain.invoice_lines import InvoiceLines
from devstack.stripe_emulator.domain.invoices import PAID, Invoices, subscription_id_of
from devstack.stripe_emulator.domain.payment_methods import PaymentMethods, charged
from devstack.stripe_emulator.domain.periods import period_end
from devstack.stripe_emulator.domain.proration import Change, Proration
from devstack.stripe_emulator.domain.subscriptions import Subscriptions, first_item, item_by_id
from devstack.stripe_emulator.errors import card_declined, invalid, missing_param
from devstack.stripe_emulator.forms import as_bool, as_int, as_list
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate


class InvoicesApi:
    def __init__(
        self,
        store: Store,
        payment_methods: PaymentMethods,
        invoices: Invoices,
        lines: InvoiceLines,
        subscriptions: Subscriptions,
        proration: Proration,
    ) -> None:
        self.store = store
        self.payment_methods = payment_methods
        self.invoices = invoices
        self.lines = lines
        self.subscriptions = subscriptions
        self.proration = proration

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/invoices/{id}/mark_uncollectible", self.mark_uncollectible),
            RouteSpec("POST", "/v1/invoices/{id}/void", self.void),
            RouteSpec("GET", "/v1/invoices", self.list_),
            RouteSpec("POST", "/v1/invoices/create_preview", self.create_preview),
            RouteSpec("GET", "/v1/invoices/{id}", self.retrieve),
            RouteSpec("GET", "/v1/invoices/{id}/lines", self.list_lines),
            RouteSpec("POST", "/v1/invoices/{id}/pay", self.pay),
        ]

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "invoice"), req.expand)

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("invoice")
        if req.params.get("customer"):
            objs = [o for o in objs if o["customer"] == req.params["customer"]]
        if req.params.get("subscription"):
            objs = [o for o in objs if subscription_id_of(o) == req.params["subscription"]]
        if req.params.get("status"):
            objs = [o for o in objs if o["status"] == req.params["status"]]
        return paginate(self.store, objs, req.params, "/v1/invoices", req.expand)

    def list_lines(self, req: Request) -> Obj:
        inv = self.store.get(req.path_params["id"], "invoice")
        data = list(reversed(inv["lines"]["data"]))
        return paginate(self.store, data, req.params, f"/v1/invoices/{inv['id']}/lines", req.expand)

    def pay(self, req: Request) -> Obj:
        inv = self.store.get(req.path_params["id"], "invoice")
        if inv["status"] != "open":
            raise invalid(
                "Invoice is already paid" if inv["status"] == "paid" else "Invoice is not open.",
                code="invoice_not_open" if inv["status"] != "paid" else "invoice_already_paid",
            )
        sub = self.invoices.subscription_of(inv)
        # `off_session` defaults to true for this call (Stripe's API reference).
        off_session = as_bool(req.params.get("off_session", True))
        if req.params.get("payment_method"):
            pm = self.store.get(str(req.params["payment_method"]), "payment_method", "payment_method")
            behavior = self.payment_methods.behavior_of(pm["id"])
            behavior = charged("decline" if behavior == "decline_on_charge" else behavior, off_session=off_session)
        else:
            behavior = self.payment_methods.charge_behavior(inv["customer"], sub, off_session=off_session)
        outcome = self.invoices.collect(inv, sub, behavior)
        if outcome == PAID and sub is not None and sub["status"] in ("past_due", "unpaid", "incomplete"):
            self.subscriptions.set_status(sub, "active")
        if outcome != PAID:
            raise card_declined()
        return self.store.render(inv, req.expand)

    def mark_uncollectible(self, req: Request) -> Obj:
        inv = self.store.get(req.path_params["id"], "invoice")
        if inv["status"] != "open":
            raise invalid("Only open invoices can be marked uncollectible.", code="invoice_not_open")
        self.invoices.mark_uncollectible(inv)
        return self.store.render(inv, req.expand)

    def void(self, req: Request) -> Obj:
        inv = self.store.get(req.path_params["id"], "invoice")
        if inv["status"] not in ("open", "uncollectible"):
            raise invalid("Only open or uncollectible invoices can be voided.", code="invoice_not_open")
        self.invoices.void(inv)
        return self.store.render(inv, req.expand)

    # ---- create_preview ---------------------------------------------------------------------------------

    def create_preview(self, req: Request) -> Obj:
        """The invoice an update would produce: now (always_invoice) or at the next renewal."""
        p = req.params
        details = p.get("subscription_details") or {}
        if not p.get("subscription"):
            if not p.get("customer"):
                raise missing_param("subscription")
            raise invalid("Previews without a subscription are not emulated.", param="subscription")
        sub = self.store.get(str(p["subscription"]), "subscription", "subscription")
        behavior = details.get("proration_behavior", "create_prorations")
        pdate_raw = details.get("proration_date")
        pdate_in = as_int(pdate_raw, "subscription_details[proration_date]") if pdate_raw not in (None, "") else None
        items = [i for i in as_list(details.get("items")) if isinstance(i, dict)]
        changes, pdate = self.proration.plan(sub, items, pdate_in)
        proration = self.proration.lines(sub, changes, pdate) if behavior != "none" else []
        if behavior == "always_invoice":
            inv = self.invoices.build(sub["customer"], sub, proration, "subscription_update", pdate, pdate, save=False)
        else:
            inv = self._next_renewal_preview(sub, changes, pdate, proration)
        inv["id"] = None
        inv["subscription_proration_date"] = pdate
        return self.store.render(inv, req.expand)

    def _next_renewal_preview(self, sub: Obj, changes: list[Change], pdate: int, proration: list[Obj]) -> Obj:
        """Pending and new prorations, then the next period at the new prices."""
        preview_sub = copy.deepcopy(sub)
        self.proration.apply(
            preview_sub,
            [(item_by_id(preview_sub, it["id"]) if it else None, pr, q) for it, pr, q in changes],
            pdate,
        )
        if preview_sub["status"] == "trialing":
            preview_sub["status"] = "active"
        pitem = first_item(preview_sub)
        start = pitem["current_period_end"]
        end = period_end(start, pitem["price"])
        pending: list[Any] = list(self.store.side(sub["id"]).get("pending_prorations", []))
        usage_start = first_item(sub)["current_period_start"]
        lines = pending + proration + self.lines.period_lines(preview_sub, start, end, usage_start=usage_start)
        return self.invoices.build(sub["customer"], sub, lines, "upcoming", start, end, save=False)
