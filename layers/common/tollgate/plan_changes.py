"""Plan changes with a price preview: the amount shown is the amount charged.

``preview`` asks Stripe for the proration of switching the caller's own subscription to a catalog plan at a fixed
``proration_date`` (``invoices.create_preview`` with ``proration_behavior=always_invoice``), stores that exact
change server-side under a random id, and returns a short-lived signed token naming it. ``apply`` verifies the
token (signature, expiry, caller), consumes it once, and updates the subscription with the same items and the same
``proration_date``, so Stripe invoices exactly the previewed proration.

The token is an HMAC-SHA256 over ``{id, user, exp}``; its key is derived from the Stripe API key, so no extra
secret is needed and rotating the Stripe key invalidates outstanding tokens (they live ten minutes anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from tollgate import errors
from tollgate.access import AccessPolicy, decide_access
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.catalog import ResolvedCatalog
from tollgate.checkout import require_plan
from tollgate.customers import CustomerDirectory
from tollgate.observability import logger
from tollgate.rate_limit import RateLimiter

if TYPE_CHECKING:
    import stripe
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.bootstrap import Container
    from tollgate.http import Caller
    from tollgate.subscriptions.repository import SubscriptionRepository

TOKEN_TTL_SECONDS = 600
TOKEN_KEY_CONTEXT = b"tollgate/plan-change-token/v1"


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    token: Annotated[str, Field(min_length=10, max_length=1024)]


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What a plan change needs from the live Stripe subscription."""

    id: str
    customer_id: str
    status: str
    item_id: str
    price_id: str
    quantity: int
    current_period_start: int
    current_period_end: int


@dataclass(frozen=True, slots=True)
class ProrationPreview:
    amount_due: int
    currency: str


class PlanChangeGateway(Protocol):
    def subscription(self, subscription_id: str) -> SubscriptionView: ...

    def preview(self, params: dict[str, Any]) -> ProrationPreview: ...

    def apply(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingChange:
    """The change a token stands for, stored server-side so the browser can alter nothing but the token."""

    token_id: str
    user_id: str
    subscription_id: str
    item_id: str
    plan_key: str
    price_id: str
    quantity: int
    proration_date: int
    amount_due: int
    currency: str
    expires_at: int
    # What the item held when the proration was previewed: the amount is only right from that state.
    from_price_id: str
    from_quantity: int


class PendingChangeStore(Protocol):
    def save(self, change: PendingChange) -> None: ...

    def consume(self, token_id: str, user_id: str, now: int) -> PendingChange:
        """Mark the change used and return it; Conflict if already used, Forbidden if not this user's."""
        ...

    def release(self, token_id: str) -> None:
        """Undo ``consume`` after a transient failure, so the same token (and idempotency key) can be retried."""
        ...


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_stripe_key(cls, api_key: str) -> TokenSigner:
        return cls(hmac.new(api_key.encode(), TOKEN_KEY_CONTEXT, hashlib.sha256).digest())

    def sign(self, token_id: str, user_id: str, expires_at: int) -> str:
        payload = _b64(json.dumps({"id": token_id, "sub": user_id, "exp": expires_at}, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def verify(self, token: str, user_id: str, now: int) -> str:
        """The token id, if the token is ours, unexpired and issued to this user."""
        payload, _, signature = token.partition(".")
        try:
            valid = hmac.compare_digest(_unb64(signature), self._mac(payload))
            claims = json.loads(_unb64(payload)) if valid else None
        except (ValueError, UnicodeDecodeError):
            valid, claims = False, None
        if not valid or not isinstance(claims, dict):
            raise errors.Forbidden("invalid plan change token")
        if claims.get("sub") != user_id:
            raise errors.Forbidden("invalid plan change token")
        expires = claims.get("exp")
        if not isinstance(expires, int) or now >= expires:
            raise errors.Conflict("the preview expired: preview the change again")
        token_id = claims.get("id")
        if not isinstance(token_id, str):
            raise errors.Forbidden("invalid plan change token")
        return token_id

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PlanChangeService:
    catalog: Callable[[], ResolvedCatalog]
    directory: CustomerDirectory
    subscriptions: SubscriptionRepository
    access_policy: AccessPolicy
    rate_limiter: RateLimiter
    gateway: PlanChangeGateway
    store: PendingChangeStore
    signer: TokenSigner
    clock: Callable[[], float] = time.time
    new_token_id: Callable[[], str] = lambda: secrets.token_urlsafe(16)

    def preview(self, caller: Caller, request: PreviewRequest) -> dict[str, Any]:
        plan = require_plan(self.catalog(), request.plan, request.quantity)
        if plan.price_id is None:
            raise errors.InvalidRequest("this plan cannot be switched to here: use the billing portal")
        self.rate_limiter.admit(caller.user_id)
        current = self._own_subscription(caller)
        if current.price_id == plan.price_id and current.quantity == request.quantity:
            raise errors.InvalidRequest("that is already your plan")
        now = int(self.clock())
        proration_date = min(max(now, current.current_period_start), current.current_period_end - 1)
        items = [{"id": current.item_id, "price": plan.price_id, "quantity": request.quantity}]
        preview = self.gateway.preview(
            {
                "customer": current.customer_id,
                "subscription": current.id,
                "subscription_details": {
                    "items": items,
                    "proration_behavior": "always_invoice",
                    "proration_date": proration_date,
                },
            }
        )
        change = PendingChange(
            token_id=self.new_token_id(),
            user_id=caller.user_id,
            subscription_id=current.id,
            item_id=current.item_id,
            plan_key=plan.key,
            price_id=plan.price_id,
            quantity=request.quantity,
            proration_date=proration_date,
            amount_due=preview.amount_due,
            currency=preview.currency,
            expires_at=now + TOKEN_TTL_SECONDS,
            from_price_id=current.price_id,
            from_quantity=current.quantity,
        )
        self.store.save(change)
        logger.info("plan change previewed", subscription_id=current.id, plan=plan.key)
        return {
            "token": self.signer.sign(change.token_id, caller.user_id, change.expires_at),
            "expires_at": change.expires_at,
            "plan": plan.key,
            "quantity": request.quantity,
            "amount_due_now": preview.amount_due,
            "currency": preview.currency,
            "proration_date": proration_date,
            "next_invoice": {
                "date": current.current_period_end,
                "amount": (plan.unit_amount or 0) * request.quantity,
            },
        }

    def apply(self, caller: Caller, request: ChangeRequest) -> dict[str, Any]:
        now = int(self.clock())
        token_id = self.signer.verify(request.token, caller.user_id, now)
        change = self.store.consume(token_id, caller.user_id, now)
        params = {
            "items": [{"id": change.item_id, "price": change.price_id, "quantity": change.quantity}],
            "proration_behavior": "always_invoice",
            "proration_date": change.proration_date,
            "metadata": {"plan": change.plan_key},
        }
        try:
            # The subscription must still be the caller's and hold what the proration was previewed from: after
            # another change (a second preview's token, the portal) the previewed amount would be wrong.
            current = self._own_subscription(caller)
            if current.id != change.subscription_id or current.item_id != change.item_id:
                raise errors.Conflict("your subscription changed since the preview: preview again")
            holds = (current.price_id, current.quantity)
            if holds == (change.price_id, change.quantity):
                # Already in the target state (this token's earlier attempt whose answer was lost): charging
                # again is never right, and there is nothing left to change.
                logger.info("plan change already in effect", subscription_id=change.subscription_id)
            elif holds != (change.from_price_id, change.from_quantity):
                raise errors.Conflict("your subscription changed since the preview: preview again")
            else:
                self.gateway.apply(change.subscription_id, params, f"plan-change:{change.token_id}")
        except (errors.UpstreamUnavailable, errors.PersistenceUnavailable):
            # Transient: let the same token retry; its idempotency key makes the retry the same Stripe call.
            self.store.release(token_id)
            raise
        logger.info("plan changed", subscription_id=change.subscription_id, plan=change.plan_key)
        return {
            "plan": change.plan_key,
            "quantity": change.quantity,
            "amount_due_now": change.amount_due,
            "currency": change.currency,
        }

    def _own_subscription(self, caller: Caller) -> SubscriptionView:
        customer_id = self.directory.customer_for_user(caller.user_id)
        if customer_id is None:
            raise errors.NotFound("no billing account yet: start a checkout first")
        state = self.subscriptions.current_for_customer(customer_id)
        if state is None or state.kind != "subscription":
            raise errors.Conflict("no subscription to change")
        if not decide_access(state, int(self.clock()), self.access_policy).allowed:
            raise errors.Conflict("no active subscription to change")
        live = self.gateway.subscription(state.subscription_id)
        if live.customer_id != customer_id:
            # The cache and Stripe disagree about ownership: never act on someone else's subscription.
            logger.error("subscription owner mismatch", subscription_id=live.id)
            raise errors.Conflict("no subscription to change")
        return live

    @classmethod
    def from_container(cls, c: Container) -> PlanChangeService:
        from tollgate.subscriptions.repository import DynamoSubscriptionRepository

        return cls(
            catalog=c.plan_catalog.get,
            directory=c.customer_directory,
            subscriptions=DynamoSubscriptionRepository(c.dynamodb, c.settings.table_name),
            access_policy=AccessPolicy.from_settings(c.settings),
            rate_limiter=c.session_rate_limiter,
            gateway=StripePlanChangeGateway(c.stripe()),
            store=DynamoPendingChangeStore(c.dynamodb, c.settings.table_name),
            signer=TokenSigner.from_stripe_key(c.stripe_secrets().api_key.get_secret_value()),
        )


class DynamoPendingChangeStore:
    """``PREVIEW#{token_id}``/``PREVIEW`` items; DynamoDB's TTL removes them after ``expires_at``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(token_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"PREVIEW#{token_id}"}, "sk": {"S": "PREVIEW"}}

    def save(self, change: PendingChange) -> None:
        item: dict[str, Any] = {
            **self._key(change.token_id),
            "user_id": {"S": change.user_id},
            "subscription_id": {"S": change.subscription_id},
            "item_id": {"S": change.item_id},
            "plan_key": {"S": change.plan_key},
            "price_id": {"S": change.price_id},
            "quantity": {"N": str(change.quantity)},
            "proration_date": {"N": str(change.proration_date)},
            "amount_due": {"N": str(change.amount_due)},
            "currency": {"S": change.currency},
            "expires_at": {"N": str(change.expires_at)},
            "from_price_id": {"S": change.from_price_id},
            "from_quantity": {"N": str(change.from_quantity)},
        }
        with aws_errors("plan_change.save"):
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def consume(self, token_id: str, user_id: str, now: int) -> PendingChange:
        try:
            with aws_errors("plan_change.consume"):
                result = self._client.update_item(
                    TableName=self._table,
                    Key=self._key(token_id),
                    UpdateExpression="SET used_at = :now",
                    ConditionExpression="attribute_exists(pk) AND user_id = :u AND attribute_not_exists(used_at) "
                    "AND expires_at > :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":u": {"S": user_id}},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = cast(Any, exc.response).get("Item") or {}
            if not old or old.get("user_id", {}).get("S") != user_id:
                raise errors.Forbidden("invalid plan change token") from None
            if "used_at" in old:
                raise errors.Conflict("this plan change was already applied") from None
            raise errors.Conflict("the preview expired: preview the change again") from None
        a = result["Attributes"]
        return PendingChange(
            token_id=token_id,
            user_id=a["user_id"]["S"],
            subscription_id=a["subscription_id"]["S"],
            item_id=a["item_id"]["S"],
            plan_key=a["plan_key"]["S"],
            price_id=a["price_id"]["S"],
            quantity=int(a["quantity"]["N"]),
            proration_date=int(a["proration_date"]["N"]),
            amount_due=int(a["amount_due"]["N"]),
            currency=a["currency"]["S"],
            expires_at=int(a["expires_at"]["N"]),
            from_price_id=a["from_price_id"]["S"],
            from_quantity=int(a["from_quantity"]["N"]),
        )

    def release(self, token_id: str) -> None:
        with aws_errors("plan_change.release"):
            self._client.update_item(TableName=self._table, Key=self._key(token_id), UpdateExpression="REMOVE used_at")


class StripePlanChangeGateway:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def subscription(self, subscription_id: str) -> SubscriptionView:
        from tollgate.adapters.stripe_client import stripe_errors

        with stripe_errors("subscriptions.retrieve"):
            sub = self._client.v1.subscriptions.retrieve(subscription_id)
        items = sub["items"].data
        if len(items) != 1:
            raise errors.Conflict("this subscription has several items: use the billing portal")
        item = items[0]
        customer = sub.customer if isinstance(sub.customer, str) else sub.customer.id
        # API 2026-10-28: billing periods live on subscription items.
        return SubscriptionView(
            id=sub.id,
            customer_id=customer,
            status=sub.status,
            item_id=item.id,
            price_id=item.price.id,
            quantity=int(item.quantity or 1),
            current_period_start=int(item.current_period_start),
            current_period_end=int(item.current_period_end),
        )

    def preview(self, params: dict[str, Any]) -> ProrationPreview:
        from tollgate.adapters.stripe_client import stripe_errors

        with stripe_errors("invoices.create_preview"):
            invoice = self._client.v1.invoices.create_preview(params=cast(Any, params))
        return ProrationPreview(amount_due=int(invoice.amount_due), currency=str(invoice.currency))

    def apply(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None:
        from tollgate.adapters.stripe_client import stripe_errors

        with stripe_errors("subscriptions.update"):
            self._client.v1.subscriptions.update(
                subscription_id, params=cast(Any, params), options={"idempotency_key": idempotency_key}
            )
