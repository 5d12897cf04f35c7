"""Products, prices (lookup keys), the seed loader (products, prices, meters, pricing plans, portal config)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_bool, as_list
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def make_product(emu: StripeEmulator, params: dict[str, Any], oid: str | None = None) -> Obj:
    now = emu.clock.now_int()
    return emu.store.put(
        {
            "id": oid or new_id("prod", 14),
            "object": "product",
            "active": True,
            "created": now,
            "default_price": None,
            "description": params.get("description"),
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": dict(params.get("metadata") or {}),
            "name": params["name"],
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": now,
            "url": None,
        }
    )


def make_price(emu: StripeEmulator, params: dict[str, Any], oid: str | None = None) -> Obj:
    product = emu.store.get(str(params.get("product")), "product", "product")
    recurring = params.get("recurring")
    lookup_key = params.get("lookup_key")
    if lookup_key:
        for other in emu.store.all("price"):
            if other["lookup_key"] == lookup_key:
                if not as_bool(params.get("transfer_lookup_key")):
                    raise invalid(f"A price with lookup key '{lookup_key}' already exists.", param="lookup_key")
                other["lookup_key"] = None
    unit_amount = int(params.get("unit_amount", 0))
    price: Obj = {
        "id": oid or new_id("price", 24),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": emu.clock.now_int(),
        "currency": params.get("currency", "usd"),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(params.get("metadata") or {}),
        "nickname": params.get("nickname"),
        "product": product["id"],
        "recurring": None,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    if recurring:
        price["type"] = "recurring"
        price["recurring"] = {
            "interval": recurring.get("interval", "month"),
            "interval_count": int(recurring.get("interval_count", 1)),
            "meter": recurring.get("meter"),
            "trial_period_days": None,
            "usage_type": recurring.get("usage_type", "licensed"),
        }
    emu.store.put(price)
    if product["default_price"] is None:
        product["default_price"] = price["id"]
    return price


def load_seed(emu: StripeEmulator, seed: dict[str, Any]) -> None:
    """Create the seeded catalog with fixed ids so tests and the local stack can name them."""
    from .meters import make_meter

    for meter in seed.get("meters", []):
        make_meter(
            emu,
            {
                "display_name": meter.get("display_name", meter["event_name"]),
                "event_name": meter["event_name"],
                "default_aggregation": {"formula": meter.get("aggregation", "sum")},
                "customer_mapping": {
                    "event_payload_key": meter.get("customer_mapping_key", "stripe_customer_id"),
                    "type": "by_id",
                },
                "value_settings": {"event_payload_key": meter.get("value_key", "value")},
            },
            oid=meter.get("id"),
        )
    for feature in seed.get("features", []):
        emu.entitlements.make_feature(feature["lookup_key"], feature.get("name"))
    for prod in seed.get("products", []):
        make_product(emu, {"name": prod["name"], "metadata": prod.get("metadata")}, oid=prod["id"])
        for lookup_key in prod.get("features", []):
            emu.entitlements.attach(prod["id"], lookup_key)
        for p in prod.get("prices", []):
            recurring: dict[str, Any] | None = None
            if p.get("interval"):
                recurring = {"interval": p["interval"], "usage_type": p.get("usage_type", "licensed")}
                if p.get("meter_event_name"):
                    meter = emu.billing.meter_by_event(p["meter_event_name"])
                    recurring["meter"] = meter["id"] if meter else None
            make_price(
                emu,
                {
                    "product": prod["id"],
                    "unit_amount": p["unit_amount"],
                    "currency": p.get("currency", "usd"),
                    "lookup_key": p.get("lookup_key"),
                    "nickname": p.get("nickname") or p.get("lookup_key"),
                    "recurring": recurring,
                },
                oid=p["id"],
            )
    for plan in seed.get("pricing_plans", []):
        emu.store.put(
            {
                "id": plan["id"],
                "object": "v2.billing.pricing_plan",
                "active": True,
                "created": "2026-01-01T00:00:00.000Z",
                "currency": plan.get("currency", "usd"),
                "description": plan.get("description"),
                "display_name": plan["display_name"],
                "latest_version": plan["id"].replace("bpp_", "bppv_"),
                "live_version": plan["id"].replace("bpp_", "bppv_"),
                "livemode": False,
                "lookup_key": plan.get("lookup_key"),
                "metadata": {},
                "tax_behavior": "exclusive",
            }
        )
        emu.store.side(plan["id"])["seed"] = plan
    from .portal import make_configuration

    licensed: dict[str, list[str]] = {}
    for price in reversed(emu.store.all("price")):
        if (price.get("recurring") or {}).get("usage_type") == "licensed":
            licensed.setdefault(price["product"], []).append(price["id"])
    make_configuration(
        emu,
        {
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "products": [{"product": k, "prices": v} for k, v in licensed.items()],
                    "default_allowed_updates": ["price", "quantity"],
                    "proration_behavior": "create_prorations",
                },
                "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
                "payment_method_update": {"enabled": True},
            }
        },
        oid="bpc_default",
        is_default=True,
    )


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def list_products(req: Request) -> Obj:
        objs = store.all("product")
        if "active" in req.params:
            objs = [o for o in objs if o["active"] == as_bool(req.params["active"])]
        return paginate(store, objs, req.params, "/v1/products", req.expand)

    def create_product(req: Request) -> Obj:
        if not req.params.get("name"):
            raise missing_param("name")
        return store.render(make_product(emu, req.params), req.expand)

    def get_product(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "product"), req.expand)

    def list_prices(req: Request) -> Obj:
        objs = store.all("price")
        keys = as_list(req.params.get("lookup_keys"))
        if keys:
            objs = [o for o in objs if o["lookup_key"] in keys]
        if "active" in req.params:
            objs = [o for o in objs if o["active"] == as_bool(req.params["active"])]
        if req.params.get("product"):
            objs = [o for o in objs if o["product"] == req.params["product"]]
        if req.params.get("type"):
            objs = [o for o in objs if o["type"] == req.params["type"]]
        return paginate(store, objs, req.params, "/v1/prices", req.expand)

    def create_price(req: Request) -> Obj:
        if not req.params.get("product"):
            raise missing_param("product")
        return store.render(make_price(emu, req.params), req.expand)

    def get_price(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "price"), req.expand)

    def get_pricing_plan(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "v2.billing.pricing_plan"))

    def list_product_features(req: Request) -> Obj:
        product = store.get(req.path_params["id"], "product")
        feats = list(reversed(emu.entitlements.product_features(product["id"])))
        return paginate(store, feats, req.params, f"/v1/products/{product['id']}/features")

    def list_features(req: Request) -> Obj:
        return paginate(store, store.all("entitlements.feature"), req.params, "/v1/entitlements/features")

    def list_active_entitlements(req: Request) -> Obj:
        customer = req.params.get("customer")
        if not customer:
            raise missing_param("customer")
        store.get(str(customer), "customer", "customer")
        ents = emu.entitlements.active_entitlements(str(customer))
        return paginate(store, ents, req.params, "/v1/entitlements/active_entitlements", req.expand)

    def get_active_entitlement(req: Request) -> Obj:
        for cus in store.all("customer"):
            for ent in emu.entitlements.active_entitlements(cus["id"]):
                if ent["id"] == req.path_params["id"]:
                    return store.render(ent, req.expand)
        from devstack.stripe_emulator.errors import not_found

        raise not_found("active entitlement", req.path_params["id"])

    def get_ppsub(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "v2.billing.pricing_plan_subscription"))

    def list_ppsubs(req: Request) -> Obj:
        objs = store.all("v2.billing.pricing_plan_subscription")
        if req.params.get("customer"):
            objs = [o for o in objs if o["customer"] == req.params["customer"]]
        return {"data": [store.render(o) for o in objs], "next_page_url": None, "previous_page_url": None}

    def cancel_ppsub(req: Request) -> Obj:
        """Emulator-only: end a pricing-plan subscription (Stripe does it through v2 billing intents)."""
        ppsub = store.get(req.path_params["id"], "v2.billing.pricing_plan_subscription")
        emu.pricing_plans.cancel(ppsub)
        return store.render(ppsub)

    r = emu.router
    r.add("GET", "/v1/products/{id}/features", list_product_features)
    r.add("GET", "/v1/entitlements/features", list_features)
    r.add("GET", "/v1/entitlements/active_entitlements", list_active_entitlements)
    r.add("GET", "/v1/entitlements/active_entitlements/{id}", get_active_entitlement)
    r.add("GET", "/v2/billing/pricing_plan_subscriptions", list_ppsubs)
    r.add("GET", "/v2/billing/pricing_plan_subscriptions/{id}", get_ppsub)
    r.add("POST", "/_emulator/pricing_plan_subscriptions/{id}/cancel", cancel_ppsub, kind="control")
    r.add("GET", "/v1/products", list_products)
    r.add("POST", "/v1/products", create_product)
    r.add("GET", "/v1/products/{id}", get_product)
    r.add("GET", "/v1/prices", list_prices)
    r.add("POST", "/v1/prices", create_price)
    r.add("GET", "/v1/prices/{id}", get_price)
    r.add("GET", "/v2/billing/pricing_plans/{id}", get_pricing_plan)
