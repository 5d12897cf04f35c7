"""Checkout Sessions in subscription mode (line_items or pricing-plan checkout_items) and their line items.

Completion happens on the hosted page (`pages.py`); this module validates and stores sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import StripeError, invalid, missing_param
from devstack.stripe_emulator.forms import as_bool, as_int, as_list
from devstack.stripe_emulator.ids import new_id, test_mode_id
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, list_object, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator

SESSION_TTL = 24 * 3600
MIN_TRIAL_DAYS = 2  # Checkout requires trials of at least 48 hours


def is_preview_version(version: str) -> bool:
    return ".preview" in version or "preview" in version.split(";", 1)[0]


def line_items_of(emu: StripeEmulator, cs: Obj) -> list[Obj]:
    """The session's line items as Stripe `item` objects."""
    out: list[Obj] = []
    for li in emu.store.side(cs["id"]).get("line_items", []):
        price = emu.store.objects[li["price"]]
        product = emu.store.objects.get(price["product"], {})
        amount = int(price["unit_amount"] or 0) * int(li["quantity"] or 1)
        metered = (price.get("recurring") or {}).get("usage_type") == "metered"
        out.append(
            {
                "id": li["id"],
                "object": "item",
                "adjustable_quantity": None,
                "amount_discount": 0,
                "amount_subtotal": 0 if metered else amount,
                "amount_tax": 0,
                "amount_total": 0 if metered else amount,
                "currency": price["currency"],
                "description": product.get("name"),
                "metadata": {},
                "price": price,
                "quantity": None if metered else li["quantity"],
            }
        )
    return out


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def expand_line_items(cs: Obj) -> Obj:
        return list_object(line_items_of(emu, cs), f"/v1/checkout/sessions/{cs['id']}/line_items")

    store.virtual_expanders[("checkout.session", "line_items")] = expand_line_items

    def parse_line_items(params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for i, li in enumerate(as_list(params.get("line_items"))):
            if not isinstance(li, dict) or not li.get("price"):
                raise invalid("Each line item needs a price.", param=f"line_items[{i}][price]")
            price = emu.billing.price(str(li["price"]), f"line_items[{i}][price]")
            if not price["active"]:
                raise invalid(f"The price '{price['id']}' is not active.", param=f"line_items[{i}][price]")
            if price["type"] != "recurring":
                raise invalid(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                    param=f"line_items[{i}][price]",
                )
            metered = (price.get("recurring") or {}).get("usage_type") == "metered"
            qty = None if metered else as_int(li.get("quantity", 1), f"line_items[{i}][quantity]")
            if qty is not None and qty < 1:
                raise invalid("Quantity must be at least 1.", param=f"line_items[{i}][quantity]")
            if metered and li.get("quantity") not in (None, ""):
                raise invalid(
                    "Quantity should not be specified where usage_type is `metered`.",
                    param=f"line_items[{i}][quantity]",
                )
            items.append({"id": new_id("li", 24), "price": price["id"], "quantity": qty})
        return items

    def create(req: Request) -> Obj:
        p = req.params
        mode = p.get("mode")
        if not mode:
            raise missing_param("mode")
        if mode != "subscription":
            raise invalid("Only mode=subscription is emulated.", param="mode")
        if not p.get("success_url") and p.get("ui_mode", "hosted") == "hosted":
            raise missing_param("success_url")
        checkout_items = as_list(p.get("checkout_items"))
        if checkout_items and p.get("line_items"):
            raise invalid(
                "You may only specify one of these parameters: checkout_items, line_items.", param="checkout_items"
            )
        plan_id = None
        items: list[dict[str, Any]] = []
        if checkout_items:
            if not is_preview_version(req.stripe_version):
                raise invalid(
                    "checkout_items is only available on preview API versions: send a Stripe-Version header "
                    "ending in `.preview`.",
                    param="checkout_items",
                )
            first = checkout_items[0]
            if not isinstance(first, dict) or first.get("type") != "pricing_plan_subscription_item":
                raise invalid("Unsupported checkout item type.", param="checkout_items[0][type]")
            plan_id = str((first.get("pricing_plan_subscription_item") or {}).get("pricing_plan") or "")
            if not plan_id:
                raise missing_param("checkout_items[0][pricing_plan_subscription_item][pricing_plan]")
            plan = store.find(plan_id)
            if plan is None or plan["object"] != "v2.billing.pricing_plan":
                raise StripeError(
                    404,
                    f"No such pricing plan: '{plan_id}'",
                    code="resource_missing",
                    param="checkout_items[0][pricing_plan_subscription_item][pricing_plan]",
                )
        else:
            items = parse_line_items(p)
            if not items:
                raise missing_param("line_items")
        sub_data = p.get("subscription_data") or {}
        trial_days = None
        if sub_data.get("trial_period_days") not in (None, ""):
            trial_days = as_int(sub_data["trial_period_days"], "subscription_data[trial_period_days]")
            if trial_days < MIN_TRIAL_DAYS:
                raise invalid(
                    "The `trial_period_days` parameter must be at least 2 (Checkout requires trials of at least "
                    "48 hours).",
                    param="subscription_data[trial_period_days]",
                )
        customer = p.get("customer")
        if customer:
            store.get(str(customer), "customer", "customer")
        if customer and p.get("customer_email"):
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.", param="customer_email"
            )
        cs_id = test_mode_id("cs")
        now = emu.clock.now_int()
        currency = "usd"
        subtotal = 0
        for li in items:
            price = store.objects[li["price"]]
            currency = price["currency"]
            subtotal += int(price["unit_amount"] or 0) * int(li["quantity"] or 0)
        if plan_id:
            seed = store.side(plan_id).get("seed", {})
            subtotal = int(seed.get("monthly_license_fee", 0))
        amount = 0 if trial_days else subtotal
        cs: Obj = {
            "id": cs_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": as_bool(p["allow_promotion_codes"]) if "allow_promotion_codes" in p else None,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {
                "enabled": as_bool((p.get("automatic_tax") or {}).get("enabled")),
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": p.get("billing_address_collection"),
            "cancel_url": p.get("cancel_url"),
            "checkout_items": checkout_items or None,
            "client_reference_id": p.get("client_reference_id"),
            "client_secret": None,
            "consent": None,
            "created": now,
            "currency": currency,
            "customer": customer,
            "customer_creation": None if customer else "always",
            "customer_details": None,
            "customer_email": p.get("customer_email"),
            "expires_at": now + SESSION_TTL,
            "invoice": None,
            "livemode": False,
            "locale": p.get("locale"),
            "metadata": dict(p.get("metadata") or {}),
            "mode": mode,
            "payment_intent": None,
            "payment_method_collection": "always",
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": p.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": p.get("ui_mode", "hosted"),
            "url": f"{req.base_url}/c/pay/{cs_id}",
        }
        store.put(cs)
        side = store.side(cs_id)
        side.update(
            {
                "line_items": items,
                "pricing_plan": plan_id,
                "trial_days": trial_days,
                "subscription_metadata": dict(sub_data.get("metadata") or {}),
                "missing_pm_behavior": ((sub_data.get("trial_settings") or {}).get("end_behavior") or {}).get(
                    "missing_payment_method", "create_invoice"
                ),
                "stripe_version": req.stripe_version,
            }
        )
        return store.render(cs, req.expand)

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "checkout.session"), req.expand)

    def list_(req: Request) -> Obj:
        objs = store.all("checkout.session")
        for key in ("customer", "subscription", "status", "client_reference_id"):
            if req.params.get(key):
                objs = [o for o in objs if o.get(key) == req.params[key]]
        return paginate(store, objs, req.params, "/v1/checkout/sessions", req.expand)

    def list_line_items(req: Request) -> Obj:
        cs = store.get(req.path_params["id"], "checkout.session")
        items = line_items_of(emu, cs)
        items.reverse()
        result = paginate(store, items, req.params, f"/v1/checkout/sessions/{cs['id']}/line_items", req.expand)
        return result

    def expire(req: Request) -> Obj:
        cs = store.get(req.path_params["id"], "checkout.session")
        if cs["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{cs["status"]}".',
                param="session",
            )
        cs["status"] = "expired"
        emu.events.emit("checkout.session.expired", cs)
        return store.render(cs, req.expand)

    r = emu.router
    r.add("POST", "/v1/checkout/sessions", create)
    r.add("GET", "/v1/checkout/sessions", list_)
    r.add("GET", "/v1/checkout/sessions/{id}", retrieve)
    r.add("GET", "/v1/checkout/sessions/{id}/line_items", list_line_items)
    r.add("POST", "/v1/checkout/sessions/{id}/expire", expire)
