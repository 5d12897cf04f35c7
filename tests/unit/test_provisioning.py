"""The provisioning description and planner, pure: no Stripe, no AWS. What the catalog describes, what a plan
changes, and that nothing unowned is ever a target."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tollgate import errors
from tollgate.config import PlanCatalog, ProvisioningSettings, Settings
from tollgate.domain import provisioning as p
from tollgate.domain.signatures import fingerprint
from tollgate.ports.stripe import Executed
from tollgate.services.provisioning import Provisioner, describe

OWNER = "stack-a"
API_VERSION = "2026-10-28.endive"
CATALOG: dict[str, Any] = {
    "plans": [
        {
            "key": "team",
            "name": "Team",
            "max_quantity": 10,
            "prices": [
                {"lookup_key": "team_monthly", "unit_amount": 2900},
                {"lookup_key": "team_yearly", "unit_amount": 29000, "interval": "year"},
                {"lookup_key": "team_tokens", "unit_amount": 1, "meter": "api_tokens"},
            ],
            "features": ["seats"],
        },
        {"key": "legacy", "name": "Legacy", "price_id": "price_legacy"},
    ]
}


def inputs(catalog: dict[str, Any] | None = None, **extra: Any) -> ProvisioningSettings:
    return ProvisioningSettings(
        owner=OWNER,
        plan_catalog=PlanCatalog.model_validate(catalog or CATALOG),
        meter_event_names=("api_tokens",),
        webhook_url="https://api.example/dev/webhooks/stripe",
        portal_return_url="https://app.example/billing",
        **extra,
    )


def owned(slot: str) -> dict[str, str]:
    return {p.OWNER_KEY: OWNER, p.SLOT_KEY: slot}


def test_old_catalogs_stay_valid_and_prices_default_the_checkout_price() -> None:
    # Given a catalog written before provisioning (lookup key only) and one describing prices
    old = PlanCatalog.model_validate({"plans": [{"key": "a", "name": "A", "price_lookup_key": "a_monthly"}]})
    new = PlanCatalog.model_validate(CATALOG)
    # Then the old plan is not provisioned, and the new one sells its first licensed price
    assert not old.plans[0].provisioned
    team = new.get("team")
    assert team is not None
    assert team.price_lookup_key == "team_monthly"
    assert team.licensed_lookup_keys() == ("team_monthly", "team_yearly")
    assert new.plan_for_lookup_key("team_yearly") is team
    assert new.plan_for_lookup_key("team_tokens") is None


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ({"price_lookup_key": "other", "prices": [{"lookup_key": "x", "unit_amount": 1}]}, "not in its prices"),
        ({"prices": [{"lookup_key": "x", "unit_amount": 1, "meter": "m"}]}, "exactly one"),
        ({"prices": [{"lookup_key": "x", "unit_amount": 1}, {"lookup_key": "x", "unit_amount": 2}]}, "unique"),
        ({"prices": [{"lookup_key": "x", "unit_amount": -1}]}, "UNIT_AMOUNT"),
    ],
)
def test_a_bad_price_description_fails_naming_it(plan: dict[str, Any], problem: str) -> None:
    catalog = {"plans": [{"key": "a", "name": "A", **plan}]}
    with pytest.raises(errors.ConfigurationError, match=problem):
        Settings.from_environment(
            {"TABLE_NAME": "tbl", "STRIPE_SECRET_ARN": "arn", "PLAN_CATALOG": json.dumps(catalog)}
        )


def test_the_description_follows_the_catalog_meters_and_urls() -> None:
    description = describe(inputs(), API_VERSION)
    # Only plans describing prices are products; a price_id plan is someone else's
    assert [s.key for s in description.products] == ["team"]
    assert [f.lookup_key for f in description.features] == ["seats"]
    assert [m.event_name for m in description.meters] == ["api_tokens"]
    assert description.portal == p.PortalSpec("https://app.example/billing")
    snapshot, thin = description.endpoints
    assert (snapshot.kind, snapshot.api_version, thin.kind) == ("webhook_endpoint", API_VERSION, "event_destination")


def test_a_metered_price_on_a_meter_the_reporter_does_not_send_is_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="UsageMeterEventNames"):
        describe(inputs().model_copy(update={"meter_event_names": ()}), API_VERSION)


def test_an_empty_account_plans_creates_in_dependency_order() -> None:
    planned = p.plan(describe(inputs(), API_VERSION), p.Account(), now=0)
    kinds = [(c.action, c.kind) for c in planned.changes]
    # Features and meters before products, products before prices, prices before the portal listing them
    order = [k for _, k in kinds]
    assert order.index("feature") < order.index("product") < order.index("price") < order.index("portal_configuration")
    assert kinds.count(("create", "price")) == 3
    assert ("attach", "product_feature") in kinds
    # The metered price points at the meter being created (resolved when applied)
    metered = next(c for c in planned.changes if c.key == "team_tokens")
    assert metered.params["recurring"]["meter"] == p.Ref("meter:api_tokens")
    # The portal lists only seat prices and lets the quantity change within the plan's seats
    portal = next(c for c in planned.changes if c.kind == "portal_configuration")
    [entry] = portal.params["features"]["subscription_update"]["products"]
    assert entry["prices"] == [p.Ref("price:team_monthly"), p.Ref("price:team_yearly")]
    assert entry["adjustable_quantity"] == {"enabled": True, "minimum": 1, "maximum": 10}


def test_keys_are_deterministic_so_a_retried_apply_replays() -> None:
    first = p.plan(describe(inputs(), API_VERSION), p.Account(), now=0)
    second = p.plan(describe(inputs(), API_VERSION), p.Account(), now=99)
    assert [c.idempotency_key(OWNER) for c in first.changes] == [c.idempotency_key(OWNER) for c in second.changes]
    assert len({c.idempotency_key(OWNER) for c in first.changes}) == len(first.changes)


UNOWNED_ACCOUNT = p.Account(
    products=(p.ObservedProduct("prod_x", "Team", None, True, {}),),
    prices=(p.ObservedPrice("price_x", "prod_x", None, True, 2900, "usd", "month", 1, None, None, {}),),
    features=(p.ObservedFeature("feat_x", "seats", "Seats", True, {}),),
    portals=(p.ObservedPortal("bpc_x", True, {}, {}),),
    endpoints=(p.ObservedEndpoint("we_x", "webhook_endpoint", "https://x", ("*",), None, True, {}),),
)


def test_objects_not_marked_as_owned_are_never_a_target() -> None:
    # Given an account full of look-alikes nobody marked as this stack's (and one marked for another stack)
    other = p.ObservedProduct("prod_other", "Team", None, True, {p.OWNER_KEY: "stack-b", p.SLOT_KEY: "plan:team"})
    account = dataclasses.replace(UNOWNED_ACCOUNT, products=(*UNOWNED_ACCOUNT.products, other))
    # When a plan and a teardown are made
    planned = p.plan(describe(inputs(), API_VERSION), account, now=0)
    teardown = p.plan_teardown(OWNER, account)
    # Then no change targets any of them; the existing feature is used as it is
    targets = {c.target for c in planned.changes} | {c.target for c in teardown.changes}
    assert targets.isdisjoint({"prod_x", "price_x", "feat_x", "bpc_x", "we_x", "prod_other"})
    assert teardown.changes == ()
    attach = next(c for c in planned.changes if c.kind == "product_feature")
    assert attach.params == {"entitlement_feature": "feat_x"}


def test_control_the_same_objects_marked_as_owned_are_targets() -> None:
    account = p.Account(
        products=(p.ObservedProduct("prod_x", "Old", None, True, owned("plan:gone")),),
        features=(p.ObservedFeature("feat_x", "seats", "Seats", True, owned("feature")),),
    )
    teardown = p.plan_teardown(OWNER, account)
    assert {c.target for c in teardown.changes} == {"prod_x", "feat_x"}


class RecordingAccount:
    def __init__(self, account: p.Account) -> None:
        self.account = account
        self.sent: list[p.Change] = []

    def observe(self, owner: str) -> p.Account:
        return self.account

    def execute(self, change: p.Change, params: Any, parent: str | None, idempotency_key: str) -> Executed:
        self.sent.append(change)
        return Executed(change.target or f"new_{len(self.sent)}")

    def set_metadata(self, kind: str, object_id: str, metadata: Any, idempotency_key: str) -> None:
        pass


class NoSecrets:
    def fingerprints(self) -> frozenset[str]:
        return frozenset()

    def add(self, secret: str) -> None:
        pass

    def remove(self, fingerprints: frozenset[str]) -> int:
        return 0


def test_the_applier_refuses_a_change_to_an_unowned_object_even_if_a_plan_held_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a (broken) planner that would archive an unowned product
    account = RecordingAccount(UNOWNED_ACCOUNT)
    bad = p.Plan(OWNER, (p.Change("archive", "product", "Team", "broken", "prod_x", {"active": False}),))
    monkeypatch.setattr(p, "plan", lambda *args, **kwargs: bad)
    provisioner = Provisioner(account, NoSecrets(), API_VERSION, key_is_live=lambda: False)
    # When it applies, Then it refuses and sends nothing
    with pytest.raises(errors.ProvisioningRefused, match="not owned"):
        provisioner.apply(inputs())
    assert account.sent == []


def test_every_seat_price_of_a_plan_projects_to_that_plan_and_a_metered_one_to_none() -> None:
    from tollgate.domain.projection import plan_key_for

    catalog = PlanCatalog.model_validate(CATALOG)
    assert plan_key_for(catalog, "price_1", "team_monthly") == "team"
    assert plan_key_for(catalog, "price_2", "team_yearly") == "team"
    assert plan_key_for(catalog, "price_3", "team_tokens") is None
    assert plan_key_for(catalog, "price_4", "unknown") is None


# ---- EventBridge ingress (issue 12) -------------------------------------------------------------------------

BRIDGE = {"aws_account_id": "123456789012", "aws_region": "eu-west-1"}


def bridged_inputs(ingress: str) -> ProvisioningSettings:
    return inputs(event_ingress=ingress, **BRIDGE)


def endpoint_changes(planned: p.Plan) -> list[p.Change]:
    return [c for c in planned.changes if c.kind in ("webhook_endpoint", "event_destination")]


def test_with_eventbridge_the_stack_asks_for_two_eventbridge_destinations_and_no_webhook() -> None:
    # Given StripeEventIngress=eventbridge, when an empty account is planned
    creates = endpoint_changes(p.plan(describe(bridged_inputs("eventbridge"), API_VERSION), p.Account(), now=0))
    # Then exactly two destinations of type amazon_eventbridge: snapshot (pinned) and thin, in this account/region
    assert [(c.action, c.kind, c.key) for c in creates] == [
        ("create", "event_destination", "eventbridge:snapshot"),
        ("create", "event_destination", "eventbridge:thin"),
    ]
    snapshot, thin = (c.params for c in creates)
    assert snapshot["type"] == thin["type"] == "amazon_eventbridge"
    assert snapshot["amazon_eventbridge"] == thin["amazon_eventbridge"] == BRIDGE
    assert (snapshot["event_payload"], snapshot["snapshot_api_version"]) == ("snapshot", API_VERSION)
    assert thin["event_payload"] == "thin"
    assert "snapshot_api_version" not in thin
    assert "webhook_endpoint" not in snapshot
    # And the handled event types, exactly as the webhook endpoint would subscribe to them
    webhook = {c.key: c.params for c in endpoint_changes(p.plan(describe(inputs(), API_VERSION), p.Account(), now=0))}
    assert snapshot["enabled_events"] == webhook["webhook:snapshot"]["enabled_events"]
    assert thin["enabled_events"] == webhook["webhook:thin"]["enabled_events"]


def test_with_both_the_webhook_endpoints_stay_beside_the_eventbridge_destinations() -> None:
    creates = endpoint_changes(p.plan(describe(bridged_inputs("both"), API_VERSION), p.Account(), now=0))
    assert sorted(c.key for c in creates) == [
        "eventbridge:snapshot",
        "eventbridge:thin",
        "webhook:snapshot",
        "webhook:thin",
    ]


def test_eventbridge_ingress_needs_the_account_and_region() -> None:
    with pytest.raises(ValueError, match="account id and region"):
        inputs(event_ingress="eventbridge")


def observed_bridge(slot: str, status: str = "pending", **extra: Any) -> p.ObservedEndpoint:
    spec = next(e for e in describe(bridged_inputs("eventbridge"), API_VERSION).endpoints if e.slot == slot)
    values: dict[str, Any] = {
        "id": f"ed_{slot}",
        "kind": "event_destination",
        "url": None,
        "events": spec.events,
        "api_version": spec.api_version,
        "enabled": True,
        "metadata": owned(slot),
        "event_source": f"aws.partner/stripe.com/ed_{slot}",
        "event_source_status": status,
    }
    return p.ObservedEndpoint(**{**values, **extra})


def test_eventbridge_destinations_in_step_plan_nothing_though_they_have_no_signing_secret() -> None:
    # Given both destinations as provisioning made them (no signing secret exists for EventBridge)
    account = p.Account(endpoints=(observed_bridge("eventbridge:snapshot"), observed_bridge("eventbridge:thin")))
    # Then nothing changes
    assert endpoint_changes(p.plan(describe(bridged_inputs("eventbridge"), API_VERSION), account, now=0)) == []
    # Control: the same check a webhook destination gets (its secret's fingerprint unknown) replaces it
    thin = describe(inputs(), API_VERSION).endpoints[1]
    webhook_thin = p.ObservedEndpoint("ed_w", "event_destination", thin.url, thin.events, None, True, owned(thin.slot))
    changes = endpoint_changes(p.plan(describe(inputs(), API_VERSION), p.Account(endpoints=(webhook_thin,)), now=0))
    assert ("disable", "ed_w") in [(c.action, c.target) for c in changes]


def test_a_destination_whose_partner_source_aws_deleted_is_replaced() -> None:
    # Given the snapshot destination's partner source was never associated and AWS deleted it after 7 days
    account = p.Account(
        endpoints=(observed_bridge("eventbridge:snapshot", "deleted"), observed_bridge("eventbridge:thin", "active"))
    )
    changes = endpoint_changes(p.plan(describe(bridged_inputs("eventbridge"), API_VERSION), account, now=0))
    # Then a new destination replaces it (a new partner source; the next deploy's buses follow it), the old is disabled
    assert [(c.action, c.key) for c in changes] == [
        ("create", "eventbridge:snapshot"),
        ("disable", "eventbridge:snapshot"),
    ]


def test_switching_from_webhook_to_eventbridge_disables_the_webhook_endpoints() -> None:
    # Given the endpoints of webhook ingress, in step
    secret = "whsec_" + "a" * 32
    marks = {**owned("webhook:snapshot"), p.SECRET_FINGERPRINT_KEY: fingerprint(secret)}
    spec_events = describe(inputs(), API_VERSION).endpoints[0].events
    endpoint = p.ObservedEndpoint(
        "we_1", "webhook_endpoint", "https://api.example/dev/webhooks/stripe", spec_events, API_VERSION, True, marks
    )
    planned = p.plan(
        describe(bridged_inputs("eventbridge"), API_VERSION),
        p.Account(endpoints=(endpoint,)),
        now=0,
        signing_secrets=frozenset({fingerprint(secret)}),
    )
    # Then it is disabled (never deleted) once the description has no webhook endpoint
    assert ("disable", "webhook_endpoint", "we_1") in [(c.action, c.kind, c.target) for c in planned.changes]


def test_the_report_names_the_partner_event_sources_for_the_stacks_buses() -> None:
    # Given an apply that creates both destinations (the adapter returns each one's partner event source)
    class Account:
        def __init__(self) -> None:
            self.n = 0

        def observe(self, owner: str) -> p.Account:
            return p.Account()

        def execute(self, change: p.Change, params: Any, parent: Any, key: str) -> Executed:
            self.n += 1
            bridge = params.get("type") == "amazon_eventbridge"
            return Executed(f"obj_{self.n}", None, f"aws.partner/stripe.com/ed_{change.key}" if bridge else None)

        def set_metadata(self, *args: Any) -> None:
            raise AssertionError("EventBridge destinations have no signing secret to fingerprint")

    class Secrets:
        def fingerprints(self) -> frozenset[str]:
            return frozenset()

        def add(self, secret: str) -> None:
            raise AssertionError("no signing secret expected")

        def remove(self, fingerprints: Any) -> int:
            return 0

    provisioner = Provisioner(Account(), Secrets(), API_VERSION, key_is_live=lambda: False)  # type: ignore[arg-type]
    data = provisioner.apply(bridged_inputs("eventbridge")).data()
    # Then the custom resource's data carries them (the template names the buses after them)
    assert data["SnapshotEventSourceName"] == "aws.partner/stripe.com/ed_eventbridge:snapshot"
    assert data["ThinEventSourceName"] == "aws.partner/stripe.com/ed_eventbridge:thin"
