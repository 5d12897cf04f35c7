"""The provisioner function as CloudFormation runs it: recorded custom-resource request events (create, update,
delete) go to the real handler (crhelper), which answers by PUTting to a pre-signed response URL served over TLS on
127.0.0.1; Secrets Manager is moto's, Stripe the emulator."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.cloudformation import CustomResourcePlayer, CustomResourceResponse, ResponseServer
from tests.integration.provisioning.conftest import CATALOG, OWNER, World
from tests.support.events import FakeLambdaContext, load_event
from tollgate.domain.provisioning import SLOT_KEY


@pytest.fixture(scope="module")
def responses() -> Iterator[ResponseServer]:
    server = ResponseServer()
    yield server
    server.stop()


@pytest.fixture
def cloudformation(world: World, responses: ResponseServer, monkeypatch: pytest.MonkeyPatch) -> CustomResourcePlayer:
    # The function trusts the response URL's certificate the way Lambda trusts S3's: through the default store.
    monkeypatch.setenv("SSL_CERT_FILE", str(responses.ca_file))
    from functions.provisioner import app

    return CustomResourcePlayer(lambda event: app.handler(event, FakeLambdaContext(timeout_seconds=900)), responses)


def properties(catalog: dict[str, Any] | None = None, **overrides: str) -> dict[str, Any]:
    recorded = dict(load_event("cloudformation/custom_resource_create")["ResourceProperties"])
    recorded.update(
        {"Owner": OWNER, "PlanCatalog": json.dumps(catalog or CATALOG), "ApiKeyWaitSeconds": "0", **overrides}
    )
    return recorded


def send(
    player: CustomResourcePlayer,
    request: str,
    props: dict[str, Any],
    old: dict[str, Any] | None = None,
    physical_id: str | None = None,
) -> CustomResourceResponse:
    """A recorded request event with this test's properties and a fresh response URL."""
    event = load_event(f"cloudformation/custom_resource_{request}")
    url, token = player.responses.url()
    event.update({"ResponseURL": url, "ResourceProperties": props})
    if old is not None:
        event["OldResourceProperties"] = old
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return player.send(event, token)


def team_monthly(world: World) -> dict[str, Any]:
    return next(p for p in world.emulator.store.all("price") if p["lookup_key"] == "team_monthly")


def amount(value: int) -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    catalog["plans"][1]["prices"][0]["unit_amount"] = value
    return catalog


def test_the_player_sends_events_shaped_like_cloudformations(cloudformation: CustomResourcePlayer) -> None:
    # Given CloudFormation's recorded events / When the player builds its own / Then they carry the same fields
    for request in ("create", "update", "delete"):
        recorded = load_event(f"cloudformation/custom_resource_{request}")
        built, _ = cloudformation.event(
            recorded["RequestType"],
            "StripeProvisioning",
            "Custom::StripeProvisioning",
            recorded["ResourceProperties"],
            physical_id=recorded.get("PhysicalResourceId"),
            old_properties=recorded.get("OldResourceProperties"),
        )
        assert set(built) == set(recorded)
        assert built["ResponseURL"].startswith("https://")


def test_create_provisions_stripe_and_reports_the_plan(world: World, cloudformation: CustomResourcePlayer) -> None:
    # When CloudFormation creates the resource
    response = send(cloudformation, "create", properties())
    # Then the answer is a success naming the stack's physical id, with the plan in Reason and Data
    assert response.succeeded, response.reason
    assert response.physical_id == f"stripe-{OWNER}"
    assert "create" in response.reason
    assert response.data["Summary"] == response.reason
    [portal] = world.emulator.store.all("billing_portal.configuration")
    assert response.data["PortalConfigurationId"] == portal["id"]
    assert response.data["WebhookEndpointId"].startswith("we_")
    # And Stripe holds the plans' products and the secret both signing secrets
    assert {p["metadata"][SLOT_KEY] for p in world.emulator.store.all("product")} == {"plan:starter", "plan:team"}
    assert len(world.secret()["webhook_secrets"]) == 2


def test_update_with_a_changed_catalog_moves_the_lookup_key(world: World, cloudformation: CustomResourcePlayer) -> None:
    # Given a created resource
    created = send(cloudformation, "create", properties())
    old = team_monthly(world)
    # When the catalog's Team amount changes and CloudFormation updates the resource
    response = send(cloudformation, "update", properties(amount(3900)), properties(), created.physical_id)
    # Then it succeeds, keeps its physical id (no replacement, so no delete follows), and reports the change
    assert response.succeeded, response.reason
    assert response.physical_id == created.physical_id
    assert "1 archive" in response.reason
    assert "1 create" in response.reason
    assert team_monthly(world)["unit_amount"] == 3900
    assert world.emulator.store.get(old["id"])["active"] is False


def test_a_stripe_4xx_during_update_fails_the_deployment_with_its_message_and_the_next_update_succeeds(
    world: World, cloudformation: CustomResourcePlayer
) -> None:
    # Given a created resource, and Stripe refusing the next price creation (a 400)
    created = send(cloudformation, "create", properties())
    world.emulator.faults.add("/v1/prices", method="POST", status=400)
    # When CloudFormation updates it with a changed amount
    failed = send(cloudformation, "update", properties(amount(3900)), properties(), created.physical_id)
    # Then the deployment fails with Stripe's message, and the lookup key is still on the old price
    assert failed.status == "FAILED"
    assert "Emulated fault." in failed.reason
    assert "create price team_monthly" in failed.reason
    assert failed.physical_id == created.physical_id
    assert team_monthly(world)["unit_amount"] == 2900
    # When CloudFormation rolls back (the previous properties), Then Stripe is as before the update
    rollback = send(cloudformation, "update", properties(), properties(amount(3900)), created.physical_id)
    assert rollback.succeeded, rollback.reason
    assert team_monthly(world)["unit_amount"] == 2900
    # And the next update (Stripe accepting again) succeeds
    retried = send(cloudformation, "update", properties(amount(3900)), properties(), created.physical_id)
    assert retried.succeeded, retried.reason
    assert team_monthly(world)["unit_amount"] == 3900


def test_delete_archives_and_disables_and_deletes_nothing(world: World, cloudformation: CustomResourcePlayer) -> None:
    # Given a created resource
    created = send(cloudformation, "create", properties())
    # When CloudFormation deletes it
    response = send(cloudformation, "delete", properties(), physical_id=created.physical_id)
    # Then it succeeds; products and prices are archived, endpoints disabled, nothing was deleted
    assert response.succeeded, response.reason
    assert all(not p["active"] for p in world.emulator.store.all("product"))
    assert all(not p["active"] for p in world.emulator.store.all("price"))
    assert all(e["status"] == "disabled" for e in world.emulator.store.all("webhook_endpoint"))
    assert [r for r in world.writes() if r["method"] == "DELETE"] == []


def test_without_an_api_key_yet_the_create_is_pending_not_failed(
    world: World, cloudformation: CustomResourcePlayer
) -> None:
    # Given a first deploy: the secret exists but holds no value yet
    boto3.client("secretsmanager").put_secret_value(SecretId=world.secret_arn, SecretString="{}")
    before = len(world.writes())
    # When CloudFormation creates the resource (no time to wait for the key)
    response = send(cloudformation, "create", properties())
    # Then it succeeds as pending (the stack does not roll back) and nothing reached Stripe
    assert response.succeeded, response.reason
    assert response.reason.startswith("pending")
    assert response.data["PortalConfigurationId"] == ""
    assert world.writes()[before:] == []


def test_invalid_properties_fail_the_deployment_naming_the_problem(cloudformation: CustomResourcePlayer) -> None:
    # When the catalog is not valid JSON / Then the answer is FAILED and says so
    response = send(cloudformation, "create", properties(PlanCatalog="{not json"))
    assert response.status == "FAILED"
    assert "PlanCatalog is not valid JSON" in response.reason
