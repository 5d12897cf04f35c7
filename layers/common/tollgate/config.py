"""Typed configuration, parsed once per cold start from the environment.

Environment variables carry names, ARNs and plain settings; secret *values* (the Stripe API key and webhook
signing secrets) are read from Secrets Manager by the Stripe adapter. A bad value fails the cold start with a
message that names the variable, not a customer's first click.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tollgate.errors import ConfigurationError

#: Lookup keys, feature keys and meter event names: what Stripe accepts in them, kept simple.
STRIPE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"


class PlanPrice(BaseModel):
    """A recurring price Stripe should hold for a plan (provisioning creates it; its lookup key names it).

    ``meter`` (a usage meter event name) makes it a metered price billed per unit of that meter's usage;
    otherwise it is a licensed price charged per seat.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_key: Annotated[str, Field(pattern=STRIPE_KEY_PATTERN)]
    unit_amount: Annotated[int, Field(ge=0, le=99_999_999)]
    currency: Annotated[str, Field(pattern=r"^[a-z]{3}$")] = "usd"
    interval: Literal["day", "week", "month", "year"] = "month"
    interval_count: Annotated[int, Field(ge=1, le=12)] = 1
    meter: Annotated[str | None, Field(pattern=STRIPE_KEY_PATTERN)] = None
    nickname: Annotated[str | None, Field(min_length=1, max_length=100)] = None

    @property
    def metered(self) -> bool:
        return self.meter is not None


class PlanFeature(BaseModel):
    """An entitlement feature by lookup key, with the name Stripe shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_key: Annotated[str, Field(pattern=STRIPE_KEY_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=80)]


class Plan(BaseModel):
    """One sellable plan. Exactly one of ``price_lookup_key``, ``price_id`` or ``pricing_plan`` names it in Stripe.

    ``prices`` (with ``description`` and ``features``) describe what provisioning creates for the plan: one product
    with these prices and entitlement features. With ``prices``, ``price_lookup_key`` (the price Checkout sells)
    defaults to the first licensed price and must be one of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: Annotated[str | None, Field(min_length=1, max_length=500)] = None
    price_lookup_key: str | None = None
    price_id: Annotated[str | None, Field(pattern=r"^price_[A-Za-z0-9_]+$")] = None
    pricing_plan: Annotated[str | None, Field(pattern=r"^bpp_[A-Za-z0-9_]+$")] = None
    prices: tuple[PlanPrice, ...] = ()
    features: tuple[Annotated[str, Field(pattern=STRIPE_KEY_PATTERN)], ...] = ()
    trial_days: Annotated[int, Field(ge=0, le=730)] = 0
    min_quantity: Annotated[int, Field(ge=1)] = 1
    max_quantity: Annotated[int, Field(ge=1, le=10_000)] = 1

    @model_validator(mode="before")
    @classmethod
    def _checkout_price_defaults_to_the_first_licensed_one(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("prices")
            and not any(data.get(k) for k in ("price_lookup_key", "price_id", "pricing_plan"))
        ):
            licensed = [p for p in data["prices"] if isinstance(p, dict) and not p.get("meter")]
            if licensed and licensed[0].get("lookup_key"):
                return {**data, "price_lookup_key": licensed[0]["lookup_key"]}
        return data

    @model_validator(mode="after")
    def _one_stripe_reference(self) -> Self:
        named = [v for v in (self.price_lookup_key, self.price_id, self.pricing_plan) if v]
        if len(named) != 1:
            raise ValueError(f"plan {self.key!r} needs exactly one of price_lookup_key, price_id, pricing_plan")
        if self.min_quantity > self.max_quantity:
            raise ValueError(f"plan {self.key!r}: min_quantity exceeds max_quantity")
        if self.trial_days == 1:
            raise ValueError(f"plan {self.key!r}: Stripe Checkout requires trials of at least 2 days")
        self._prices_fit_the_reference()
        return self

    def _prices_fit_the_reference(self) -> None:
        if not self.prices:
            return
        keys = [p.lookup_key for p in self.prices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"plan {self.key!r}: price lookup keys must be unique")
        if not self.price_lookup_key:
            raise ValueError(f"plan {self.key!r}: prices describe Stripe prices, so name one with price_lookup_key")
        checkout_price = next((p for p in self.prices if p.lookup_key == self.price_lookup_key), None)
        if checkout_price is None:
            raise ValueError(f"plan {self.key!r}: price_lookup_key {self.price_lookup_key!r} is not in its prices")
        if checkout_price.metered:
            raise ValueError(f"plan {self.key!r}: the price Checkout sells must be licensed, not metered")

    @property
    def provisioned(self) -> bool:
        """Whether provisioning creates this plan's product and prices (it describes them)."""
        return bool(self.prices)

    def licensed_lookup_keys(self) -> tuple[str, ...]:
        """Lookup keys of the plan's seat prices: Checkout's and those the portal may switch to."""
        keys = [p.lookup_key for p in self.prices if not p.metered]
        if self.price_lookup_key and self.price_lookup_key not in keys:
            keys.insert(0, self.price_lookup_key)
        return tuple(keys)


class PlanCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plans: Annotated[tuple[Plan, ...], Field(min_length=1)]
    # Names for the plans' feature lookup keys; a key not listed is named after itself.
    features: tuple[PlanFeature, ...] = ()

    @field_validator("plans")
    @classmethod
    def _unique_keys(cls, plans: tuple[Plan, ...]) -> tuple[Plan, ...]:
        keys = [p.key for p in plans]
        if len(set(keys)) != len(keys):
            raise ValueError("plan keys must be unique")
        lookup_keys = [price.lookup_key for p in plans for price in p.prices]
        if len(set(lookup_keys)) != len(lookup_keys):
            raise ValueError("price lookup keys must be unique across plans")
        return plans

    def get(self, key: str) -> Plan | None:
        return next((p for p in self.plans if p.key == key), None)

    def plan_for_lookup_key(self, lookup_key: str) -> Plan | None:
        """The plan whose seat price carries ``lookup_key`` (Checkout's price or another of its licensed prices)."""
        return next((p for p in self.plans if lookup_key in p.licensed_lookup_keys()), None)


OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
URL_PATTERN = r"^https?://[^\s]+$"


class Settings(BaseModel):
    """Everything the functions read from their environment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: str = "dev"
    service_name: str = "tollgate"
    table_name: Annotated[str, Field(min_length=3)]
    stripe_secret_arn: Annotated[str, Field(min_length=1)]
    plan_catalog: PlanCatalog | None = None
    event_bus_name: str | None = None
    usage_queue_url: str | None = None
    usage_dlq_url: str | None = None
    # Usage reporter: v2 meter event streams by default, v1 meter events as the fallback.
    usage_transport: Literal["stream", "v1"] = "stream"
    # Meter event names the reporter accepts; others are parked without a Stripe call. None: let Stripe decide.
    usage_meter_event_names: frozenset[str] | None = None
    # Concurrent ledger calls per usage batch (one thread and one pooled DynamoDB connection each).
    usage_ledger_concurrency: Annotated[int, Field(ge=1, le=100)] = 16
    # The usage drift check's window: the complete UTC days before today it compares with Stripe's meters.
    usage_drift_days_back: Annotated[int, Field(ge=1, le=35)] = 3
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    portal_return_url: str | None = None
    portal_configuration_id: str | None = None
    # Dunning: past_due keeps access until Stripe's retries end (unpaid/canceled), or for past_due_grace_days.
    past_due_grace: Literal["until_stripe_gives_up", "days"] = "until_stripe_gives_up"
    past_due_grace_days: Annotated[int, Field(ge=0, le=60)] = 7
    # Who gets the catalog plan's trial on Checkout.
    trial_policy: Literal["once_per_user", "always", "never"] = "once_per_user"
    # An incomplete subscription (first payment pending, e.g. 3-D Secure) is denied unless the product opts in.
    allow_incomplete_access: bool = False
    # Stripe transport. The SDK's defaults (80 s, 2 retries) do not fit API Gateway's 30 s.
    stripe_timeout_seconds: Annotated[float, Field(gt=0, le=20)] = 5.0
    stripe_max_network_retries: Annotated[int, Field(ge=0, le=5)] = 2
    # Base address overrides point the same code at the local emulator; empty means api.stripe.com.
    stripe_api_base: str | None = None
    stripe_meter_events_base: str | None = None
    # Local stack only: a file holding the Stripe emulator clock's offset from the wall clock (one clock for the stack).
    clock_offset_file: str | None = None
    # Seconds a cached secret value is reused before Secrets Manager is asked again.
    secret_cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    webhook_tolerance_seconds: Annotated[int, Field(ge=60, le=600)] = 300
    webhook_max_body_bytes: Annotated[int, Field(ge=1024, le=10_485_760)] = 262_144
    # Stripe events through EventBridge: the partner event sources provisioning created (the only trusted
    # ``source`` values); ``make provision`` reads the account and region Stripe creates them in.
    stripe_event_sources: frozenset[str] = frozenset()
    stripe_event_account_id: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    stripe_event_ingress: Literal["webhook", "eventbridge", "both"] = "webhook"
    aws_region: str | None = None
    # Customer-facing API: Checkout options and the per-user limit on session creation.
    checkout_allow_promotion_codes: bool = False
    checkout_automatic_tax: bool = False
    session_rate_limit_per_minute: Annotated[int, Field(ge=1, le=1000)] = 10
    # The success page's status check polls (about once a second while the webhook is on its way).
    status_check_rate_limit_per_minute: Annotated[int, Field(ge=1, le=1000)] = 60
    # Stripe provisioning: the metadata mark on what this stack owns in Stripe, where Stripe delivers events, and
    # whether a live-mode key may be provisioned.
    stripe_resource_owner: Annotated[str, Field(pattern=OWNER_PATTERN)] = "tollgate"
    webhook_url: Annotated[str | None, Field(pattern=URL_PATTERN)] = None
    allow_stripe_live_mode: bool = False

    @field_validator(
        "plan_catalog",
        "event_bus_name",
        "usage_queue_url",
        "usage_dlq_url",
        "checkout_success_url",
        "checkout_cancel_url",
        "portal_return_url",
        "portal_configuration_id",
        "stripe_api_base",
        "stripe_meter_events_base",
        "clock_offset_file",
        "webhook_url",
        "stripe_event_account_id",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("stripe_event_sources", mode="before")
    @classmethod
    def _source_names(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("usage_meter_event_names", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            names = frozenset(n.strip() for n in value.split(",") if n.strip())
            return names or None
        return value

    @field_validator("plan_catalog", mode="before")
    @classmethod
    def _catalog_from_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"PLAN_CATALOG is not valid JSON: {exc.msg}") from None
        return value

    @field_validator("checkout_success_url")
    @classmethod
    def _success_url_carries_session(cls, value: str | None) -> str | None:
        if value is not None and "{CHECKOUT_SESSION_ID}" not in value:
            raise ValueError("CHECKOUT_SUCCESS_URL must contain {CHECKOUT_SESSION_ID}")
        return value

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        values = {
            "stage": environ.get("STAGE", "dev"),
            "service_name": environ.get("POWERTOOLS_SERVICE_NAME", "tollgate"),
            "table_name": environ.get("TABLE_NAME", ""),
            "stripe_secret_arn": environ.get("STRIPE_SECRET_ARN", ""),
            "plan_catalog": environ.get("PLAN_CATALOG"),
            "event_bus_name": environ.get("EVENT_BUS_NAME"),
            "usage_queue_url": environ.get("USAGE_QUEUE_URL"),
            "usage_dlq_url": environ.get("USAGE_DLQ_URL"),
            "usage_transport": environ.get("USAGE_TRANSPORT", "stream"),
            "usage_meter_event_names": environ.get("USAGE_METER_EVENT_NAMES"),
            "usage_ledger_concurrency": environ.get("USAGE_LEDGER_CONCURRENCY", "16"),
            "usage_drift_days_back": environ.get("USAGE_DRIFT_DAYS_BACK", "3"),
            "checkout_success_url": environ.get("CHECKOUT_SUCCESS_URL"),
            "checkout_cancel_url": environ.get("CHECKOUT_CANCEL_URL"),
            "portal_return_url": environ.get("PORTAL_RETURN_URL"),
            "portal_configuration_id": environ.get("PORTAL_CONFIGURATION_ID"),
            "past_due_grace": environ.get("PAST_DUE_GRACE", "until_stripe_gives_up"),
            "past_due_grace_days": environ.get("PAST_DUE_GRACE_DAYS", "7"),
            "trial_policy": environ.get("TRIAL_POLICY", "once_per_user"),
            "allow_incomplete_access": environ.get("ALLOW_INCOMPLETE_ACCESS", "false"),
            "stripe_timeout_seconds": environ.get("STRIPE_TIMEOUT_SECONDS", "5"),
            "stripe_max_network_retries": environ.get("STRIPE_MAX_NETWORK_RETRIES", "2"),
            "stripe_api_base": environ.get("STRIPE_API_BASE"),
            "stripe_meter_events_base": environ.get("STRIPE_METER_EVENTS_BASE"),
            "clock_offset_file": environ.get("CLOCK_OFFSET_FILE"),
            "secret_cache_seconds": environ.get("SECRET_CACHE_SECONDS", "300"),
            "webhook_tolerance_seconds": environ.get("WEBHOOK_TOLERANCE_SECONDS", "300"),
            "webhook_max_body_bytes": environ.get("WEBHOOK_MAX_BODY_BYTES", "262144"),
            "stripe_event_sources": environ.get("STRIPE_EVENT_SOURCES"),
            "stripe_event_account_id": environ.get("STRIPE_EVENT_ACCOUNT_ID"),
            "stripe_event_ingress": environ.get("STRIPE_EVENT_INGRESS", "webhook"),
            "aws_region": environ.get("AWS_REGION"),
            "checkout_allow_promotion_codes": environ.get("CHECKOUT_ALLOW_PROMOTION_CODES", "false"),
            "checkout_automatic_tax": environ.get("CHECKOUT_AUTOMATIC_TAX", "false"),
            "session_rate_limit_per_minute": environ.get("SESSION_RATE_LIMIT_PER_MINUTE", "10"),
            "status_check_rate_limit_per_minute": environ.get("STATUS_CHECK_RATE_LIMIT_PER_MINUTE", "60"),
            "stripe_resource_owner": environ.get("STRIPE_RESOURCE_OWNER", "tollgate"),
            "webhook_url": environ.get("WEBHOOK_URL"),
            "allow_stripe_live_mode": environ.get("ALLOW_STRIPE_LIVE_MODE", "false"),
        }
        present = {k: v for k, v in values.items() if v is not None}
        try:
            return cls.model_validate(present)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']).upper() or 'environment'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid configuration: {problems}") from None


class ProvisioningSettings(BaseModel):
    """What Stripe provisioning reads: the functions' settings (``make provision``) or, in a deployment, the
    custom resource's properties (the same template values)."""

    # Built on first use: only provisioning validates it, and every function imports this module.
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    owner: Annotated[str, Field(pattern=OWNER_PATTERN)]
    plan_catalog: PlanCatalog
    meter_event_names: tuple[str, ...] = ()
    webhook_url: Annotated[str | None, Field(pattern=URL_PATTERN)] = None
    portal_return_url: Annotated[str | None, Field(pattern=URL_PATTERN)] = None
    allow_live_mode: bool = False
    # Where Stripe delivers events: webhook endpoints (the HTTP route), EventBridge destinations, or both.
    event_ingress: Literal["webhook", "eventbridge", "both"] = "webhook"
    aws_account_id: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    aws_region: Annotated[str | None, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = None

    @model_validator(mode="after")
    def _eventbridge_needs_a_place(self) -> ProvisioningSettings:
        if self.event_ingress != "webhook" and not (self.aws_account_id and self.aws_region):
            raise ValueError("EventBridge ingress needs the AWS account id and region")
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> ProvisioningSettings:
        if settings.plan_catalog is None:
            raise ConfigurationError("invalid configuration: PLAN_CATALOG is required to provision Stripe")
        return cls(
            owner=settings.stripe_resource_owner,
            plan_catalog=settings.plan_catalog,
            meter_event_names=tuple(sorted(settings.usage_meter_event_names or ())),
            webhook_url=settings.webhook_url,
            portal_return_url=settings.portal_return_url,
            allow_live_mode=settings.allow_stripe_live_mode,
            event_ingress=settings.stripe_event_ingress,
            aws_account_id=settings.stripe_event_account_id,
            aws_region=settings.aws_region,
        )

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ProvisioningSettings:
        """A custom resource's ``ResourceProperties`` (CloudFormation sends every value as a string)."""
        names = str(properties.get("UsageMeterEventNames") or "")
        values = {
            "owner": properties.get("Owner"),
            "plan_catalog": properties.get("PlanCatalog"),
            "meter_event_names": sorted({n.strip() for n in names.split(",") if n.strip()}),
            "webhook_url": properties.get("WebhookUrl") or None,
            "portal_return_url": properties.get("PortalReturnUrl") or None,
            "allow_live_mode": str(properties.get("AllowLiveMode", "false")).lower() == "true",
            "event_ingress": properties.get("EventIngress") or "webhook",
            "aws_account_id": properties.get("AwsAccountId") or None,
            "aws_region": properties.get("AwsRegion") or None,
        }
        try:
            catalog = values["plan_catalog"]
            if isinstance(catalog, str):
                values["plan_catalog"] = json.loads(catalog)
            return cls.model_validate(values)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"invalid provisioning properties: PlanCatalog is not valid JSON: {exc.msg}"
            ) from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid provisioning properties: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (cold start) and then reused."""
    return Settings.from_environment(os.environ)
