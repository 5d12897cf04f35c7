"""The reconciler against an empty emulator account: it creates everything the description names, a second run
writes nothing, a changed amount is one new price and one archived price with the lookup key moved, and nothing it
does not own is ever changed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import stripe

from tests.integration.provisioning.conftest import CATALOG, OWNER, RETURN_URL, World
from tollgate import errors
from tollgate.domain.provisioning import OWNER_KEY, ROTATION_WINDOW_SECONDS, SLOT_KEY
from tollgate.domain.signatures import fingerprint
from tollgate.services.webhook_handlers import SNAPSHOT_HANDLERS, THIN_HANDLERS


def objects(world: World, kind: str) -> list[dict[str, Any]]:
    return [world.emulator.store.render(o) for o in world.emulator.store.all(kind)]


def price(world: World, lookup_key: str) -> dict[str, Any]:
    [found] = [p for p in objects(world, "price") if p["lookup_key"] == lookup_key]
    return found


def with_amount(lookup_key: str, amount: int) -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    for plan in catalog["plans"]:
        for p in plan.get("prices", []):
            if p["lookup_key"] == lookup_key:
                p["unit_amount"] = amount
    return catalog


def test_apply_on_an_empty_account_creates_everything_and_a_second_apply_writes_nothing(world: World) -> None:
    # Given an empty account
    provisioner = world.container.provisioner
    assert objects(world, "product") == []
    # When the description is applied
    report = provisioner.apply(world.inputs())
    # Then the plans' products, prices, features and meters exist, marked as owned
    products = {p["metadata"][SLOT_KEY]: p for p in objects(world, "product")}
    assert set(products) == {"plan:starter", "plan:team"}
    assert all(p["metadata"][OWNER_KEY] == OWNER for p in products.values())
    assert products["plan:starter"]["description"] == "For one person"
    team_monthly, team_yearly, starter = (
        price(world, "team_monthly"),
        price(world, "team_yearly"),
        price(world, "starter_monthly"),
    )
    assert (team_monthly["unit_amount"], team_monthly["recurring"]["interval"]) == (2900, "month")
    assert (team_yearly["unit_amount"], team_yearly["recurring"]["interval"]) == (29000, "year")
    assert starter["product"] == products["plan:starter"]["id"]
    [meter] = objects(world, "billing.meter")
    metered = price(world, "api_tokens_metered")
    assert (meter["event_name"], metered["recurring"]["usage_type"], metered["recurring"]["meter"]) == (
        "api_tokens",
        "metered",
        meter["id"],
    )
    features = {f["lookup_key"]: f for f in objects(world, "entitlements.feature")}
    assert set(features) == {"dashboard", "team_seats", "api_access"}
    assert features["team_seats"]["name"] == "Team seats"
    team_features = world.container.provisioner.account.observe(OWNER).product_features
    assert {f.feature for f in team_features if f.product == products["plan:team"]["id"]} == {
        features[k]["id"] for k in ("dashboard", "team_seats", "api_access")
    }
    # And a portal configuration offers exactly the catalog's seat prices, with the configured return URL
    [portal] = objects(world, "billing_portal.configuration")
    offered = {p["product"]: sorted(p["prices"]) for p in portal["features"]["subscription_update"]["products"]}
    assert offered == {
        products["plan:starter"]["id"]: [starter["id"]],
        products["plan:team"]["id"]: sorted([team_monthly["id"], team_yearly["id"]]),
    }
    assert portal["default_return_url"] == RETURN_URL
    assert portal["features"]["subscription_cancel"]["mode"] == "at_period_end"
    assert portal["features"]["payment_method_update"]["enabled"] is True
    assert report.portal_configuration_id == portal["id"]
    # When it is applied a second time
    before = len(world.writes())
    again = provisioner.apply(world.inputs())
    # Then nothing is written (the emulator's request log shows reads only)
    assert world.writes()[before:] == []
    assert again.summary == "in step: no change"
    assert again.changes == ()


def test_a_changed_amount_is_one_new_price_and_one_archived_price_and_the_lookup_key_moves(world: World) -> None:
    # Given a provisioned account
    provisioner = world.container.provisioner
    provisioner.apply(world.inputs())
    old = price(world, "team_monthly")
    # When one plan's amount changes in the catalog and the plan is shown
    before = len(world.writes())
    planned = provisioner.plan(world.inputs(with_amount("team_monthly", 3900)))
    # Then it shows exactly one new price and one archived price (and the portal following), and writes nothing
    price_changes = [c for c in planned.changes if " price " in f" {c} "]
    assert [c.split(" ", 2)[:2] for c in price_changes] == [["create", "price"], ["archive", "price"]]
    assert "2900 usd/month -> 3900 usd/month" in price_changes[0]
    assert old["id"] in price_changes[1]
    assert [c for c in planned.changes if c not in price_changes] == [
        next(c for c in planned.changes if c.startswith("update portal_configuration"))
    ]
    assert world.writes()[before:] == []
    # When it is applied
    provisioner.apply(world.inputs(with_amount("team_monthly", 3900)))
    # Then the lookup key is on a new 3900 price, the old price is archived (not deleted), the portal offers the new one
    new = price(world, "team_monthly")
    assert (new["id"] != old["id"], new["unit_amount"], new["active"]) == (True, 3900, True)
    archived = world.emulator.store.get(old["id"], "price")
    assert (archived["active"], archived["lookup_key"]) == (False, None)
    [portal] = objects(world, "billing_portal.configuration")
    offered = [p for entry in portal["features"]["subscription_update"]["products"] for p in entry["prices"]]
    assert new["id"] in offered
    assert old["id"] not in offered
    # And the control: a catalog change back takes the earlier price back (a rollback leaves Stripe as it was)
    count = len(objects(world, "price"))
    provisioner.apply(world.inputs())
    assert price(world, "team_monthly")["id"] == old["id"]
    assert world.emulator.store.get(new["id"], "price")["active"] is False
    assert len(objects(world, "price")) == count


def test_objects_it_does_not_own_are_never_changed(world: World) -> None:
    # Given objects someone made by hand: a product named like a plan, a feature, a portal configuration, an endpoint
    foreign_product = world.stripe("POST", "/v1/products", name="Team")
    foreign_price = world.stripe(
        "POST",
        "/v1/prices",
        product=foreign_product["id"],
        currency="usd",
        unit_amount="100",
        **{"recurring[interval]": "month", "lookup_key": "legacy_team"},
    )
    foreign_feature = world.stripe("POST", "/v1/entitlements/features", lookup_key="dashboard", name="Old name")
    foreign_endpoint = world.stripe(
        "POST", "/v1/webhook_endpoints", url="https://other.example.test/hook", **{"enabled_events[0]": "*"}
    )
    foreign = {foreign_product["id"], foreign_price["id"], foreign_feature["id"], foreign_endpoint["id"]}
    before = len(world.writes())
    # When the description is applied, and applied again with a changed catalog that drops a feature
    world.container.provisioner.apply(world.inputs())
    world.container.provisioner.apply(world.inputs(with_amount("starter_monthly", 1200)))
    # Then no request changed any of them (their ids appear in no write's path or parameters)
    touched = [w for w in world.writes()[before:] if any(oid in w["path"] for oid in foreign)]
    assert touched == []
    assert world.emulator.store.get(foreign_feature["id"])["name"] == "Old name"
    assert world.emulator.store.get(foreign_product["id"])["active"] is True
    # (the existing feature is used as it is: attached to the plans' products, never renamed)
    team = next(p for p in objects(world, "product") if p["metadata"].get(SLOT_KEY) == "plan:team")
    linked = [link["entitlement_feature"]["id"] for link in world.emulator.store.side(team["id"])["features"]]
    assert foreign_feature["id"] in linked


def test_an_unowned_price_holding_a_needed_lookup_key_refuses_the_apply_before_any_write(world: World) -> None:
    # Given a hand-made price that already holds the lookup key a plan needs
    product = world.stripe("POST", "/v1/products", name="Hand made")
    world.stripe(
        "POST",
        "/v1/prices",
        product=product["id"],
        currency="usd",
        unit_amount="900",
        **{"recurring[interval]": "month", "lookup_key": "starter_monthly"},
    )
    before = len(world.writes())
    # When provisioning is applied
    with pytest.raises(errors.ProvisioningRefused, match=r"starter_monthly.*does not own"):
        world.container.provisioner.apply(world.inputs())
    # Then nothing was written, and the plan names the conflict and how to adopt the price
    assert world.writes()[before:] == []
    report = world.container.provisioner.plan(world.inputs())
    assert any(f"{OWNER_KEY}={OWNER}" in note for note in report.notes)


def test_the_endpoints_subscribe_to_exactly_the_handler_tables_types_pinned_to_the_sdk(world: World) -> None:
    # Given the handler tables as they are
    world.container.provisioner.apply(world.inputs())
    # Then the snapshot endpoint has exactly the snapshot handlers' types at the SDK's API version,
    [endpoint] = objects(world, "webhook_endpoint")
    assert sorted(endpoint["enabled_events"]) == sorted(SNAPSHOT_HANDLERS)
    assert endpoint["api_version"] == stripe.api_version
    # and the thin destination exactly the thin handlers' types
    [destination] = objects(world, "v2.core.event_destination")
    assert (destination["event_payload"], sorted(destination["enabled_events"])) == ("thin", sorted(THIN_HANDLERS))


def test_a_handler_added_to_the_tables_is_subscribed_to_by_the_next_apply(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a provisioned account, then a new snapshot handler in the table
    world.container.provisioner.apply(world.inputs())
    monkeypatch.setitem(SNAPSHOT_HANDLERS, "invoice.overdue", SNAPSHOT_HANDLERS["invoice.paid"])
    # When provisioning runs again
    world.container.provisioner.apply(world.inputs())
    # Then the same endpoint (its secret still valid) now also receives that type
    [endpoint] = objects(world, "webhook_endpoint")
    assert "invoice.overdue" in endpoint["enabled_events"]
    assert sorted(endpoint["enabled_events"]) == sorted(SNAPSHOT_HANDLERS)


def test_the_signing_secret_lands_in_the_stacks_secret_and_a_delivery_signed_with_it_verifies(
    world: World, receiver: Any
) -> None:
    # Given an operator's secret holding only the API key, and an endpoint provisioned for a local receiver
    assert world.secret() == {"api_key": world.api_key}
    world.container.provisioner.apply(world.inputs(webhook_url=receiver.url))
    # Then both endpoints' signing secrets are in the secret, the API key kept
    value = world.secret()
    assert value["api_key"] == world.api_key
    assert len(value["webhook_secrets"]) == 2
    [endpoint] = objects(world, "webhook_endpoint")
    assert fingerprint(world.emulator.store.side(endpoint["id"])["secret"]) in {
        fingerprint(s) for s in value["webhook_secrets"]
    }
    # When Stripe sends an event the webhook handles (a customer deleted)
    customer = world.stripe("POST", "/v1/customers", email="x@example.test")
    world.stripe("DELETE", f"/v1/customers/{customer['id']}")
    delivery = receiver.wait_for_type("customer.deleted")
    assert delivery is not None
    # Then it verifies with one of the secrets the product reads, and not with a stranger's
    verified = [s for s in value["webhook_secrets"] if _verifies(delivery, s)]
    assert len(verified) == 1
    assert not _verifies(delivery, "whsec" + "_" + "0" * 48)
    # And events it does not handle are not delivered at all (customer.created is not in the tables)
    assert receiver.wait_for_type("customer.created", timeout=0.3) is None


def _verifies(delivery: dict[str, Any], secret: str) -> bool:
    try:
        stripe.Webhook.construct_event(delivery["body"], delivery["sig"], secret, tolerance=600)
    except stripe.SignatureVerificationError:
        return False
    return True


def test_rotation_keeps_the_old_secret_for_the_window_then_retires_it(world: World) -> None:
    # Given a provisioned account
    provisioner = world.container.provisioner
    provisioner.apply(world.inputs())
    [old] = objects(world, "webhook_endpoint")
    old_secrets = world.secret()["webhook_secrets"]
    # When the signing secrets are rotated
    provisioner.apply(world.inputs(), rotate=True)
    # Then new endpoints deliver beside the old ones, and the secret holds the new and the old secrets
    assert len([e for e in objects(world, "webhook_endpoint") if e["status"] == "enabled"]) == 2
    rotated = world.secret()["webhook_secrets"]
    assert len(rotated) == 4
    assert set(old_secrets) <= set(rotated)
    # And an apply inside the window changes nothing
    before = len(world.writes())
    provisioner.apply(world.inputs())
    assert world.writes()[before:] == []
    # When the window has passed
    world.emulator.clock.advance(ROTATION_WINDOW_SECONDS + 60)
    provisioner.apply(world.inputs())
    # Then the old endpoint is disabled (not deleted) and its secret is gone; the new ones stay
    assert world.emulator.store.get(old["id"], "webhook_endpoint")["status"] == "disabled"
    remaining = world.secret()["webhook_secrets"]
    assert set(remaining) == set(rotated) - set(old_secrets)
    assert len(remaining) == 2


def test_a_live_mode_key_is_refused_unless_live_mode_is_allowed(world: World) -> None:
    # Given a live-mode key in the secret (the emulator accepts it here)
    import boto3

    live_key = "sk" + "_live_" + "a1" * 12
    world.emulator._pipeline.api_keys.add(live_key)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=world.secret_arn, SecretString=json.dumps({"api_key": live_key})
    )
    before = len(world.writes())
    # When provisioning is applied without permission, Then it refuses before any request
    with pytest.raises(errors.ProvisioningRefused, match="live"):
        world.container.provisioner.apply(world.inputs())
    assert world.writes()[before:] == []
    # And the control: with live mode allowed it provisions
    allowed = world.inputs().model_copy(update={"allow_live_mode": True})
    world.container.provisioner.apply(allowed)
    assert len(world.writes()) > before


def test_teardown_archives_and_disables_everything_owned_and_deletes_nothing(world: World) -> None:
    # Given a provisioned account and a hand-made product
    world.container.provisioner.apply(world.inputs())
    foreign = world.stripe("POST", "/v1/products", name="Not ours")
    # When the stack is deleted
    world.container.provisioner.teardown(OWNER, allow_live_mode=False)
    # Then every owned product, price, feature and portal configuration is archived, endpoints are disabled
    owned = [o for kind in ("product", "price", "entitlements.feature") for o in objects(world, kind)]
    assert all(not o["active"] for o in owned if o["metadata"].get(OWNER_KEY) == OWNER)
    assert all(not c["active"] for c in objects(world, "billing_portal.configuration"))
    assert all(e["status"] == "disabled" for e in objects(world, "webhook_endpoint"))
    assert all(d["status"] == "disabled" for d in objects(world, "v2.core.event_destination"))
    # And nothing was deleted, the meter is untouched (usage may still arrive), the foreign product stays active
    assert [r for r in world.writes() if r["method"] == "DELETE"] == []
    assert [m["status"] for m in objects(world, "billing.meter")] == ["active"]
    assert world.emulator.store.get(foreign["id"])["active"] is True
