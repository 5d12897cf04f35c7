"""The status view and the success-page check's pure parts, on in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest

from tollgate import errors
from tollgate.domain.access import AccessPolicy, decide_access
from tollgate.domain.effects import Effects
from tollgate.domain.subscriptions import Watermark
from tollgate.services.billing_status import BillingStatusService, subscription_view
from tollgate.services.success_page import SuccessPageCheck, page_watermark
from tollgate.services.webhook_handlers import HandlerContext


class Directory:
    def __init__(self, links: dict[str, str] | None = None) -> None:
        self.links = links or {}  # customer -> user

    def customer_for_user(self, user_id: str) -> str | None:
        return next((c for c, u in self.links.items() if u == user_id), None)

    def user_for_customer(self, customer_id: str) -> str | None:
        return self.links.get(customer_id)


class Repository:
    def current_for_customer(self, customer_id: str) -> None:
        return None


class Reader:
    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        if session_id != self.session["id"]:
            raise errors.UpstreamNotFound()
        return self.session


class Applier:
    def __init__(self) -> None:
        self.applied: list[tuple[str, Effects]] = []

    def apply_effects(self, effects: Effects) -> int:
        self.applied.append((effects.writes[0].watermark.event_id, effects))
        return 1


def check_for(session: dict[str, Any], links: dict[str, str] | None = None) -> tuple[SuccessPageCheck, Applier]:
    directory = Directory(links)
    applier = Applier()
    status = BillingStatusService(Repository(), directory, AccessPolicy(), clock=lambda: 1_800_000_000)  # type: ignore[arg-type]
    context = HandlerContext(reader=Reader(session), catalog=None)  # type: ignore[arg-type]
    return SuccessPageCheck(context, directory, applier, status), applier  # type: ignore[arg-type]


def session(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "cs_test_1",
        "status": "complete",
        "payment_status": "paid",
        "created": 1_790_000_000,
        "customer": "cus_1",
        "client_reference_id": "user-1",
        "metadata": {"app_user_id": "user-1"},
        "subscription": {
            "id": "sub_1",
            "status": "active",
            "created": 1_790_000_005,
            "start_date": 1_790_000_005,
            "items": {"data": [{"current_period_start": 1_790_000_006, "current_period_end": 1_792_600_000}]},
        },
    }
    base.update(changes)
    return base


def test_a_user_without_a_subscription_gets_status_none_not_a_404() -> None:
    view = subscription_view(None, decide_access(None, 0, AccessPolicy()))
    assert view["status"] == "none"
    assert view["access"] == {"allowed": False, "reason": "no_subscription", "until": None}


def test_the_page_watermark_is_on_stripes_clock_and_ranks_as_fetched() -> None:
    # The latest Stripe timestamp among the fetched objects, never the local clock
    assert page_watermark(session()) == Watermark(1_790_000_006, Watermark.FETCHED, "page_cs_test_1")


def test_the_page_commits_the_webhooks_projection_without_reannouncing() -> None:
    check, applier = check_for(session())
    check.check("user-1", "cs_test_1")
    [(event_id, effects)] = applier.applied
    assert event_id == "page_cs_test_1"
    assert effects.announcements == []
    assert effects.link == ("user-1", "cus_1")
    assert [w.fields["status"] for w in effects.writes] == ["active"]


@pytest.mark.parametrize(
    ("changes", "links"),
    [
        ({"client_reference_id": "user-2", "metadata": {"app_user_id": "user-2"}}, None),
        ({"client_reference_id": "user-1", "metadata": {"app_user_id": "user-2"}}, None),  # disagreeing owners
        ({"client_reference_id": None, "metadata": {}}, None),  # no owner named at all
        ({}, {"cus_1": "user-2"}),  # the customer belongs to someone else
        ({}, {"cus_9": "user-1"}),  # the caller has another customer
    ],
)
def test_a_session_not_provably_the_callers_is_a_404_with_nothing_applied(
    changes: dict[str, Any], links: dict[str, str] | None
) -> None:
    check, applier = check_for(session(**changes), links)
    with pytest.raises(errors.NotFound):
        check.check("user-1", "cs_test_1")
    assert applier.applied == []


def test_an_open_session_applies_nothing() -> None:
    check, applier = check_for(session(status="open", customer=None, subscription=None))
    body = check.check("user-1", "cs_test_1")
    assert body["session_status"] == "open"
    assert body["access"]["allowed"] is False
    assert applier.applied == []
