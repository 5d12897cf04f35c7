"""The success page versus ``checkout.session.completed``: every ordering grants exactly once, to the same state.

Real pieces: the Stripe emulator's hosted Checkout (payment, session, subscription, the signed event), moto
DynamoDB with the product's ledger, repository and customer directory, and the functions' route handlers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
import stripe

from devstack.stream_poller import StreamPoller
from devstack.stripe_emulator import StripeEmulator
from tests.integration.webhooks.conftest import EMULATOR_KEY
from tests.integration.webhooks.harness import MeterErrors, RecordingBus, signing_secret
from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.moto_clients import AtomicDynamoDB
from tests.support.streams import publisher_poller
from tollgate import errors
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.adapters.dynamodb.event_ledger import DynamoEventLedger
from tollgate.adapters.dynamodb.subscription_repository import DynamoSubscriptionRepository
from tollgate.adapters.stripe_api.reader import SdkStripeReader
from tollgate.domain.access import AccessPolicy
from tollgate.domain.events import DomainEvent
from tollgate.domain.signatures import sign
from tollgate.services.billing_status import BillingStatusService
from tollgate.services.subscription_writes import SubscriptionWriter
from tollgate.services.success_page import SuccessPageCheck
from tollgate.services.webhook import WebhookDelivery, WebhookOutcome, WebhookService
from tollgate.services.webhook_handlers import HandlerContext

pytestmark = pytest.mark.slow

USER = "user-race-1"


@dataclass
class World:
    emu: StripeEmulator
    client: stripe.StripeClient
    service: WebhookService
    page: SuccessPageCheck
    status: BillingStatusService
    bus: RecordingBus
    repository: DynamoSubscriptionRepository
    directory: DynamoCustomerDirectory
    secret: str
    #: The publisher's stream mapping, feeding ``bus``.
    stream: StreamPoller

    def published(self) -> list[DomainEvent]:
        """Everything on the bus once the publisher has run on the table's stream."""
        self.stream.poll()
        return self.bus.events

    def deliver(self, event: dict[str, Any]) -> WebhookOutcome:
        body = json.dumps(event).encode()
        return self.service.receive(WebhookDelivery(body, sign(body, self.secret, self.emu.clock.now_int()), 9000))

    def activations(self) -> list[str]:
        return [e.id for e in self.published() if e.name == "subscription.activated"]


def build_world(emu: StripeEmulator, client: stripe.StripeClient, table: str) -> World:
    dynamodb = AtomicDynamoDB(boto3.client("dynamodb"))
    clock = emu.clock.now
    repository = DynamoSubscriptionRepository(dynamodb, table, clock=clock)
    directory = DynamoCustomerDirectory(dynamodb, table, clock=clock)
    bus = RecordingBus()
    secret = signing_secret()
    context = HandlerContext(reader=SdkStripeReader(lambda: client), catalog=None)
    writer = SubscriptionWriter(repository, directory, MeterErrors())
    service = WebhookService(
        signing_secrets=lambda: [secret],
        ledger=DynamoEventLedger(dynamodb, table, clock=clock),
        writer=writer,
        context=context,
        clock=clock,
        in_progress_wait_seconds=5.0,
    )
    status = BillingStatusService(repository, directory, AccessPolicy(), clock=clock)
    stream = publisher_poller(table, bus)
    stream.skip_existing()  # a world sees only its own changes (several worlds share one table)
    return World(emu, client, service, SuccessPageCheck(context, directory, writer, status), status, bus,
                 repository, directory, secret, stream)  # fmt: skip


@pytest.fixture
def world(emu: StripeEmulator, stripe_client: stripe.StripeClient, billing_table: str) -> World:
    return build_world(emu, stripe_client, billing_table)


def pay(world: World, user: str = USER) -> tuple[str, dict[str, Any]]:
    """Pay on the emulator's hosted Checkout page; return the session id and its signed-to-be completed event."""
    cs = world.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
            "success_url": "https://app.example/ok",
            "client_reference_id": user,
            "metadata": {"app_user_id": user},
            "subscription_data": {"metadata": {"app_user_id": user}},
        }
    )
    paid = requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    assert paid.status_code in (302, 303), paid.text
    events = world.client.v1.events.list({"type": "checkout.session.completed", "limit": 100}).data
    event = next(e for e in events if e.data.object.id == cs.id)
    return cs.id, event.to_dict()


def run_concurrently(*calls: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


ORDERINGS: dict[str, Callable[[Callable[[], Any], Callable[[], Any]], list[Any]]] = {
    "page_first": lambda page, hook: [page(), hook()],
    "webhook_first": lambda page, hook: [hook(), page()],
    "concurrent": run_concurrently,
    "page_twice_around_webhook": lambda page, hook: [page(), hook(), page()],
    "webhook_duplicated_around_page": lambda page, hook: [hook(), page(), hook()],
}


def comparable(state: Any) -> dict[str, Any]:
    """The projected state without the per-run identifiers (each run buys a new subscription)."""
    ignored = {
        "subscription_id",
        "customer_id",
        "user_id",
        "watermark",
        "latest_invoice_id",
        "current_period_start",
        "current_period_end",
    }
    dumped: dict[str, Any] = state.model_dump(exclude=ignored)
    dumped["period_length"] = state.current_period_end - state.current_period_start
    return dumped


def test_all_five_orderings_grant_exactly_once_and_end_in_the_same_state(
    emu: StripeEmulator, stripe_client: stripe.StripeClient, billing_table: str
) -> None:
    finals: dict[str, dict[str, Any]] = {}
    for name, ordering in ORDERINGS.items():
        # Given a new user who just paid on the hosted Checkout page
        world = build_world(emu, stripe_client, billing_table)
        user = f"user-{name}"
        session_id, event = pay(world, user)
        pages: list[dict[str, Any]] = []

        def page(
            world: World = world, user: str = user, session_id: str = session_id, pages: list[Any] = pages
        ) -> dict[str, Any]:
            pages.append(world.page.check(user, session_id))
            return pages[-1]

        def hook(world: World = world, event: dict[str, Any] = event) -> WebhookOutcome:
            return world.deliver(event)

        # When the success page and the webhook happen in this order
        ordering(page, hook)
        # Then the success page said allowed every time, exactly one grant was announced
        assert pages, name
        assert all(p["access"]["allowed"] and p["status"] == "active" for p in pages), (name, pages)
        assert len(world.activations()) == 1, (name, [e.name for e in world.published()])
        customer = world.directory.customer_for_user(user)
        assert customer is not None
        state = world.repository.current_for_customer(customer)
        assert state is not None
        # And the table equals Stripe's subscription
        sub = stripe_client.v1.subscriptions.retrieve(state.subscription_id)
        assert (state.status, state.price_id, state.current_period_end) == (
            sub.status,
            sub["items"].data[0].price.id,
            sub["items"].data[0].current_period_end,
        )
        finals[name] = comparable(state)
    # And every ordering ended in the same state
    first = next(iter(finals.values()))
    differing = {n: {k: (v, first[k]) for k, v in f.items() if v != first[k]} for n, f in finals.items()}
    assert all(not d for d in differing.values()), differing


def test_concurrent_page_and_webhook_grant_once_over_repeated_races(world: World) -> None:
    for round_ in range(6):
        user = f"user-race-{round_}"
        session_id, event = pay(world, user)
        before = len(world.activations())
        run_concurrently(
            lambda u=user, s=session_id: world.page.check(u, s),  # type: ignore[misc]
            lambda e=event: world.deliver(e),  # type: ignore[misc]
        )
        assert len(world.activations()) == before + 1


def test_control_a_page_that_only_reads_the_table_leaves_the_payer_without_access(world: World) -> None:
    # Given the redirect arrives before the webhook (the race the check exists for)
    session_id, _ = pay(world)
    # When a naive success page only reads the table
    naive = world.status.for_user(USER)
    # Then the paying user is denied, where the real check grants
    assert naive["access"]["allowed"] is False
    assert world.page.check(USER, session_id)["access"]["allowed"] is True


def test_someone_elses_session_is_a_404_and_reveals_nothing(world: World) -> None:
    session_id, _ = pay(world, "user-owner")
    with pytest.raises(errors.NotFound):
        world.page.check("user-intruder", session_id)
    with pytest.raises(errors.NotFound):
        world.page.check("user-owner", "cs_test_doesnotexist")
    # Nothing was projected or announced for the intruder's call
    assert world.published() == []


def test_a_session_whose_customer_is_linked_to_another_user_is_a_404(world: World) -> None:
    session_id, _ = pay(world, "user-owner")
    customer = world.client.v1.checkout.sessions.retrieve(session_id).customer
    # Given the customer already belongs to someone else in our directory
    world.directory.link("user-other", customer)
    with pytest.raises(errors.NotFound):
        world.page.check("user-owner", session_id)
    assert world.published() == []


# ------------------------------------------------------------------------------------------ the route handlers
@pytest.fixture
def wired(emu: StripeEmulator, billing_table: str, fresh_container: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(
        Name="tollgate/stripe",
        SecretString=json.dumps({"api_key": EMULATOR_KEY, "webhook_secrets": [signing_secret()]}),
    )["ARN"]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    monkeypatch.setenv("STRIPE_API_BASE", emu.url)
    from tollgate import bootstrap
    from tollgate.config import get_settings

    get_settings.cache_clear()
    bootstrap.reset_container(None)
    return bootstrap.container()


def call(module: str, method: str, path: str, user: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    import importlib

    app = importlib.import_module(module)
    response = app.handler(
        http_api_event(method, path, claims={"sub": user}, route_key=kwargs.pop("route_key", None), **kwargs),
        FakeLambdaContext(),
    )
    return response["statusCode"], json.loads(response["body"])


def test_routes_none_then_success_page_then_subscription_status(wired: Any, stripe_client: stripe.StripeClient) -> None:
    # Given a signed-in user with no customer: 200 with status none, never a 404
    code, body = call("functions.portal.app", "GET", "/billing/subscription", "user-route")
    assert code == 200
    assert body["status"] == "none"
    assert body["access"] == {"allowed": False, "reason": "no_subscription", "until": None}
    # When they pay and the success page calls GET /checkout/sessions/{id} before any webhook
    world = World.__new__(World)
    world.client = stripe_client
    session_id, _ = pay(world, "user-route")
    code, page = call(
        "functions.checkout.app",
        "GET",
        f"/checkout/sessions/{session_id}",
        "user-route",
        path_parameters={"id": session_id},
        route_key="GET /checkout/sessions/{id}",
    )
    assert code == 200, page
    assert (page["session_status"], page["status"], page["access"]["allowed"]) == ("complete", "active", True)
    # Then GET /billing/subscription says the same, with the plan's period end and features shape
    code, body = call("functions.portal.app", "GET", "/billing/subscription", "user-route")
    assert code == 200
    assert (body["status"], body["access"]["allowed"], body["cancel_at_period_end"]) == ("active", True, False)
    assert body["current_period_end"] > 0
    assert isinstance(body["features"], list)
    # And another user asking for that session gets a 404 with no data
    code, other = call(
        "functions.checkout.app",
        "GET",
        f"/checkout/sessions/{session_id}",
        "user-intruder",
        path_parameters={"id": session_id},
        route_key="GET /checkout/sessions/{id}",
    )
    assert code == 404
    assert "status" not in other
    assert session_id not in json.dumps(other)
