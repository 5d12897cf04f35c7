"""Customers and card payment methods (test cards and Stripe's `pm_card_*` magic ids)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from devstack.stripe_emulator.billing import diff
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator

MAGIC_PMS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequired": "4000002500003155",
}


def register(emu: StripeEmulator) -> None:
    store = emu.store
    billing = emu.billing

    def create(req: Request) -> Obj:
        cus = billing.new_customer(req.params)
        pm = req.params.get("payment_method")
        if pm:
            attach(cus, str(pm))
        return store.render(cus, req.expand)

    def attach(cus: Obj, pm_ref: str) -> Obj:
        if pm_ref in MAGIC_PMS:
            return billing.attach_card(cus, MAGIC_PMS[pm_ref], make_default=False)
        pm = store.get(pm_ref, "payment_method", "payment_method")
        pm["customer"] = cus["id"]
        return pm

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "customer"), req.expand)

    def update(req: Request) -> Obj:
        cus = store.get(req.path_params["id"], "customer")
        before = copy.deepcopy(cus)
        for field in ("email", "name", "description", "phone"):
            if field in req.params:
                cus[field] = req.params[field] or None
        if "metadata" in req.params:
            for k, v in (req.params["metadata"] or {}).items():
                if v == "":
                    cus["metadata"].pop(k, None)
                else:
                    cus["metadata"][k] = v
        settings = req.params.get("invoice_settings") or {}
        if "default_payment_method" in settings:
            ref = settings["default_payment_method"]
            if ref:
                pm = attach(cus, str(ref))
                cus["invoice_settings"]["default_payment_method"] = pm["id"]
            else:
                cus["invoice_settings"]["default_payment_method"] = None
        changes = diff(before, cus)
        if changes:
            emu.events.emit("customer.updated", cus, changes)
        return store.render(cus, req.expand)

    def delete(req: Request) -> Obj:
        cus = store.get(req.path_params["id"], "customer")
        for sub in store.all("subscription"):
            if sub["customer"] == cus["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
                billing.cancel(sub)
        emu.pricing_plans.cancel_for_customer(cus["id"])
        store.delete(cus["id"])
        emu.events.emit("customer.deleted", cus)
        return {"id": cus["id"], "object": "customer", "deleted": True}

    def list_(req: Request) -> Obj:
        objs = store.all("customer")
        if req.params.get("email"):
            objs = [o for o in objs if o["email"] == req.params["email"]]
        return paginate(store, objs, req.params, "/v1/customers", req.expand)

    def pm_attach(req: Request) -> Obj:
        cus_id = req.params.get("customer")
        if not cus_id:
            raise missing_param("customer")
        cus = store.get(str(cus_id), "customer", "customer")
        return store.render(attach(cus, req.path_params["id"]))

    def pm_retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "payment_method"), req.expand)

    def pm_list(req: Request) -> Obj:
        cus_id = req.params.get("customer")
        if not cus_id:
            raise invalid("customer is required to list payment methods", param="customer")
        objs = [o for o in store.all("payment_method") if o["customer"] == cus_id]
        return paginate(store, objs, req.params, "/v1/payment_methods", req.expand)

    r = emu.router
    r.add("POST", "/v1/customers", create)
    r.add("GET", "/v1/customers", list_)
    r.add("GET", "/v1/customers/{id}", retrieve)
    r.add("POST", "/v1/customers/{id}", update)
    r.add("DELETE", "/v1/customers/{id}", delete)
    r.add("POST", "/v1/payment_methods/{id}/attach", pm_attach)
    r.add("GET", "/v1/payment_methods/{id}", pm_retrieve)
    r.add("GET", "/v1/payment_methods", pm_list)
