"""GET /billing/invoices through the portal handler, the composition root and StripeClient on the emulator: a
customer's 25 invoices paged with the cursor, and BOLA attempts by id and by cursor (0 leaks)."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.integration.api.conftest import Stack

MONTH = 31 * 86_400


def subscribe(stack: Stack, user: str) -> None:
    created = stack.checkout("POST", "/checkout/sessions", body={"plan": "team", "quantity": 2}, claims={"sub": user})
    assert created["statusCode"] == 200, created["body"]
    url = json.loads(created["body"])["url"]
    paid = requests.post(url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    assert paid.status_code in (302, 303), paid.text


def customer_of(stack: Stack, user: str) -> str:
    customer = stack.container.customer_directory.customer_for_user(user)
    assert customer is not None
    return customer


def invoices_of(stack: Stack, customer_id: str) -> list[str]:
    return [i["id"] for i in stack.emulator.store.all("invoice") if i["customer"] == customer_id]


def page(stack: Stack, user: str, **query: str) -> dict[str, Any]:
    return stack.portal("GET", "/billing/invoices", claims={"sub": user}, query=query or None)


def test_pages_through_25_invoices_and_never_shows_another_customers(stack: Stack) -> None:
    # Given Alice and Bob subscribed, and 24 renewals later Alice has 25 invoices (Bob as many)
    subscribe(stack, "alice")
    subscribe(stack, "bob")
    for _ in range(24):
        requests.post(f"{stack.emulator.url}/_emulator/clock/advance", json={"seconds": MONTH}, timeout=30)
    alice, bob = customer_of(stack, "alice"), customer_of(stack, "bob")
    alice_ids, bob_ids = invoices_of(stack, alice), invoices_of(stack, bob)
    assert len(alice_ids) >= 25, len(alice_ids)
    assert bob_ids
    # When Alice pages through them, 10 at a time, with the cursor each page gives
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        response = page(stack, "alice", limit="10", **({"starting_after": cursor} if cursor else {}))
        assert response["statusCode"] == 200, response["body"]
        body = json.loads(response["body"])
        seen.extend(body["invoices"])
        pages += 1
        cursor = body["next_cursor"]
        if not body["has_more"]:
            assert cursor is None
            break
    # Then every one of her invoices once, newest first, with what a billing page shows; none of Bob's
    ids = [i["id"] for i in seen]
    assert sorted(ids) == sorted(alice_ids)
    assert len(ids) == len(set(ids))
    assert pages == -(-len(alice_ids) // 10)
    assert [i["created"] for i in seen] == sorted((i["created"] for i in seen), reverse=True)
    assert not set(ids) & set(bob_ids)
    first = seen[0]
    assert set(first) >= {
        "number",
        "status",
        "amount_due",
        "amount_paid",
        "total",
        "currency",
        "period_start",
        "period_end",
        "hosted_invoice_url",
        "invoice_pdf",
    }
    assert first["currency"] == "usd"
    # And only her customer was ever listed
    lists = [r for r in stack.emulator.request_log if r["method"] == "GET" and r["path"] == "/v1/invoices"]
    assert lists
    assert {r["query"].get("customer") for r in lists} == {alice}


def test_bola_by_cursor_and_by_query_leaks_nothing(stack: Stack) -> None:
    subscribe(stack, "alice")
    subscribe(stack, "bob")
    alice, bob = customer_of(stack, "alice"), customer_of(stack, "bob")
    bob_invoice = invoices_of(stack, bob)[0]
    leaks = 0
    attempts: list[dict[str, str]] = [
        {"starting_after": bob_invoice},  # another customer's invoice as the cursor
        {"starting_after": "in_doesnotexist"},
        {"customer": bob},  # the customer is never the caller's to choose
        {"customer": bob, "limit": "100"},
        {"id": bob_invoice},
        {"starting_after": "../v1/invoices?customer=" + bob},
    ]
    for query in attempts:
        response = page(stack, "alice", **query)
        leaks += bob_invoice in response["body"] or bob in response["body"]
        assert response["statusCode"] in (200, 400, 404), response
    assert leaks == 0
    # The cursor of another customer is refused outright (404), before anything is listed
    refused = page(stack, "alice", starting_after=bob_invoice)
    assert refused["statusCode"] == 404
    lists = [r for r in stack.emulator.request_log if r["method"] == "GET" and r["path"] == "/v1/invoices"]
    assert {r["query"].get("customer") for r in lists} == {alice}
    # Control: Bob, the owner, may use that cursor
    assert page(stack, "bob", starting_after=bob_invoice)["statusCode"] == 200


def test_a_user_without_a_customer_gets_404_and_bad_queries_400(stack: Stack) -> None:
    assert page(stack, "nobody")["statusCode"] == 404
    subscribe(stack, "alice")
    assert page(stack, "alice", limit="0")["statusCode"] == 400
    assert page(stack, "alice", limit="101")["statusCode"] == 400
    assert page(stack, "alice", limit="ten")["statusCode"] == 400
