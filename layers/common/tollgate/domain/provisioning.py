"""Stripe set up as code, the pure part: what the account should hold (``StripeDescription``), what it holds
(``Account``, observed by an adapter) and the changes between the two (``plan``), with no I/O.

Ownership: every object provisioning creates carries ``metadata[tollgate_owner] = <owner>`` and
``metadata[tollgate_key] = <what it stands for>``. The planner only ever updates, archives or detaches objects so
marked (and the product features of products so marked); anything else in the account is read, never changed. An
unowned price already holding a lookup key the description needs is a *conflict*: the plan cannot be applied
until someone removes the key from it or marks it as owned. Meters carry no metadata in Stripe: provisioning
creates a missing meter and otherwise never touches one.

Nothing is deleted: a changed amount gets a new price (the lookup key moves to it with ``transfer_lookup_key``)
and the old one is archived; products, features and the portal configuration are archived or deactivated and
endpoints disabled when the description no longer names them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Metadata marking what provisioning owns, and what part of the description an owned object stands for.
OWNER_KEY = "tollgate_owner"
SLOT_KEY = "tollgate_key"
#: On a webhook endpoint or event destination: a short SHA-256 of its signing secret, so the secret can be dropped
#: from the stack's secret once the endpoint is retired (a hash of a random 32-byte secret reveals nothing).
SECRET_FINGERPRINT_KEY = "tollgate_secret_sha256"  # noqa: S105 - a metadata key name, not a secret
#: On an endpoint being replaced: since when (epoch seconds) it delivers beside its replacement.
RETIRING_SINCE_KEY = "tollgate_retiring_since"
#: How long a replaced endpoint keeps delivering (and its secret keeps verifying): Stripe retries for 3 days.
ROTATION_WINDOW_SECONDS = 72 * 3600

Kind = Literal[
    "feature",
    "meter",
    "product",
    "price",
    "product_feature",
    "portal_configuration",
    "webhook_endpoint",
    "event_destination",
]
Action = Literal["create", "update", "archive", "attach", "detach", "retire", "disable"]
EndpointKind = Literal["webhook_endpoint", "event_destination"]

#: Actions that change an object that already exists (the applier checks such a target is owned).
CHANGES_EXISTING: frozenset[str] = frozenset({"update", "archive", "detach", "retire", "disable"})


# ---------------------------------------------------------------------------------------------- the description


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    lookup_key: str
    name: str


@dataclass(frozen=True, slots=True)
class MeterSpec:
    event_name: str
    display_name: str
    formula: str = "sum"
    customer_key: str = "stripe_customer_id"
    value_key: str = "value"


@dataclass(frozen=True, slots=True)
class PriceSpec:
    lookup_key: str
    unit_amount: int
    currency: str
    interval: str
    interval_count: int = 1
    meter: str | None = None  # a meter event name: a metered price
    nickname: str | None = None

    @property
    def usage_type(self) -> str:
        return "metered" if self.meter else "licensed"

    def terms(self) -> str:
        per = f"{self.interval_count} {self.interval}s" if self.interval_count > 1 else self.interval
        unit = f" per {self.meter} unit" if self.meter else ""
        return f"{self.unit_amount} {self.currency}/{per}{unit}"


@dataclass(frozen=True, slots=True)
class ProductSpec:
    key: str
    name: str
    description: str | None
    prices: tuple[PriceSpec, ...]
    features: tuple[str, ...]
    min_quantity: int = 1
    max_quantity: int = 1

    def licensed(self) -> tuple[PriceSpec, ...]:
        return tuple(p for p in self.prices if p.meter is None)


@dataclass(frozen=True, slots=True)
class PortalSpec:
    """The Customer Portal: cancel at period end, payment method update, switching among the catalog's prices."""

    return_url: str | None


@dataclass(frozen=True, slots=True)
class EventBridgeTarget:
    """Where Stripe creates the partner event source of an EventBridge destination: the stack's account and region."""

    aws_account_id: str
    aws_region: str


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    kind: EndpointKind
    url: str
    events: tuple[str, ...]
    api_version: str | None  # snapshot endpoints are pinned to the SDK's API version; thin events have none
    #: Set for an event destination of type ``amazon_eventbridge`` (no URL, no signing secret).
    eventbridge: EventBridgeTarget | None = None

    @property
    def payload(self) -> Literal["snapshot", "thin"]:
        return "snapshot" if self.kind == "webhook_endpoint" or self.api_version else "thin"

    @property
    def slot(self) -> str:
        if self.eventbridge is not None:
            return f"eventbridge:{self.payload}"
        return "webhook:snapshot" if self.kind == "webhook_endpoint" else "webhook:thin"


@dataclass(frozen=True, slots=True)
class StripeDescription:
    owner: str
    features: tuple[FeatureSpec, ...]
    meters: tuple[MeterSpec, ...]
    products: tuple[ProductSpec, ...]
    portal: PortalSpec | None
    endpoints: tuple[EndpointSpec, ...]

    def fingerprint(self) -> str:
        """A digest of the description (the custom resource reports it so a stack event names what was applied)."""
        return hashlib.sha256(json.dumps(_plain(self), sort_keys=True).encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- the account


@dataclass(frozen=True, slots=True)
class ObservedFeature:
    id: str
    lookup_key: str
    name: str
    active: bool
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObservedMeter:
    id: str
    event_name: str
    active: bool


@dataclass(frozen=True, slots=True)
class ObservedProduct:
    id: str
    name: str
    description: str | None
    active: bool
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObservedPrice:
    id: str
    product: str
    lookup_key: str | None
    active: bool
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int
    meter: str | None  # the meter's id (Stripe's field), not its event name
    nickname: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObservedProductFeature:
    id: str
    product: str
    feature: str  # the feature's id


@dataclass(frozen=True, slots=True)
class ObservedPortal:
    id: str
    active: bool
    settings: Mapping[str, Any]  # the comparable part (see ``portal_settings``)
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObservedEndpoint:
    id: str
    kind: EndpointKind
    url: str | None
    events: tuple[str, ...]
    api_version: str | None
    enabled: bool
    metadata: Mapping[str, str]
    #: An EventBridge destination's partner event source (name) and AWS's state for it (pending, active, deleted).
    event_source: str | None = None
    event_source_status: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """What one Stripe account holds of the kinds provisioning manages."""

    livemode: bool = False
    features: tuple[ObservedFeature, ...] = ()
    meters: tuple[ObservedMeter, ...] = ()
    products: tuple[ObservedProduct, ...] = ()
    prices: tuple[ObservedPrice, ...] = ()
    product_features: tuple[ObservedProductFeature, ...] = ()
    portals: tuple[ObservedPortal, ...] = ()
    endpoints: tuple[ObservedEndpoint, ...] = ()

    def owned_ids(self, owner: str) -> frozenset[str]:
        """Ids of every object marked as ``owner``'s (and the product features of its products)."""
        marked: list[Any] = [*self.features, *self.products, *self.prices, *self.portals, *self.endpoints]
        ids = {o.id for o in marked if o.metadata.get(OWNER_KEY) == owner}
        ids |= {pf.id for pf in self.product_features if pf.product in ids}
        return frozenset(ids)


# ---------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Ref:
    """The id of an object this plan creates, known only once the create ran (``"product:starter"``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: Kind
    key: str  # what the description calls it: a lookup key, plan key, event name, "portal", "webhook:snapshot"
    reason: str
    target: str | None = None  # the existing object (None for a create or an attach)
    params: Mapping[str, Any] = field(default_factory=dict)  # may hold Ref placeholders
    creates: str | None = None  # the Ref name a create's id is recorded under
    parent: str | Ref | None = None  # the product a product feature belongs to

    def line(self) -> str:
        where = f" {self.target}" if self.target else ""
        return f"{self.action} {self.kind} {self.key}{where}: {self.reason}"

    def idempotency_key(self, owner: str) -> str:
        """Deterministic from our identifiers and the request: a retried apply replays, never duplicates."""
        body = json.dumps(_plain_params(self.params), sort_keys=True, default=str)
        digest = hashlib.sha256(f"{self.target}|{self.parent}|{body}".encode()).hexdigest()[:24]
        return f"tollgate-provision:{owner}:{self.action}:{self.kind}:{self.key}:{digest}"[:255]


def _plain_params(value: Any) -> Any:
    if isinstance(value, Ref):
        return {"ref": value.name}
    if isinstance(value, Mapping):
        return {k: _plain_params(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_params(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Plan:
    owner: str
    changes: tuple[Change, ...]
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    prune_fingerprints: frozenset[str] = frozenset()  # signing secrets of retired endpoints to drop

    @property
    def empty(self) -> bool:
        return not self.changes and not self.prune_fingerprints

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        return counts

    def summary(self) -> str:
        if self.conflicts:
            return f"{len(self.conflicts)} conflict(s): " + "; ".join(self.conflicts)
        if self.empty:
            return "in step: no change"
        counts = ", ".join(f"{n} {action}" for action, n in sorted(self.counts().items()))
        pruned = f", {len(self.prune_fingerprints)} signing secret(s) dropped" if self.prune_fingerprints else ""
        return counts + pruned

    def lines(self) -> list[str]:
        return [*(f"! {c}" for c in self.conflicts), *(c.line() for c in self.changes), *(f"# {n}" for n in self.notes)]


# ---------------------------------------------------------------------------------------------- planning


def _owned(metadata: Mapping[str, str], owner: str) -> bool:
    return metadata.get(OWNER_KEY) == owner


def _marks(owner: str, slot: str, **extra: str) -> dict[str, str]:
    return {OWNER_KEY: owner, SLOT_KEY: slot, **extra}


@dataclass
class _Planner:
    """One planning run: the changes so far and the ids (or Refs) of what the description names."""

    description: StripeDescription
    account: Account
    now: int
    rotate: bool = False
    # Fingerprints of the signing secrets the stack's secret holds now.
    signing_secrets: frozenset[str] = frozenset()
    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prune: set[str] = field(default_factory=set)
    feature_ids: dict[str, str | Ref] = field(default_factory=dict)
    meter_ids: dict[str, str | Ref] = field(default_factory=dict)
    product_ids: dict[str, str | Ref] = field(default_factory=dict)
    price_ids: dict[str, str | Ref] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.description.owner

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def run(self) -> Plan:
        self._features()
        self._meters()
        self._products()
        for spec in self.description.products:
            self._prices(spec)
        self._stray_prices()
        self._product_features()
        self._stray_features()
        self._portal()
        for endpoint in self.description.endpoints:
            self._endpoint(endpoint)
        self._retired_endpoints()
        return Plan(self.owner, tuple(self.changes), tuple(self.conflicts), tuple(self.notes), frozenset(self.prune))

    # ---- features and meters -------------------------------------------------------------------------------

    def _features(self) -> None:
        by_key = {f.lookup_key: f for f in self.account.features}
        for spec in self.description.features:
            found = by_key.get(spec.lookup_key)
            if found is None:
                self.feature_ids[spec.lookup_key] = Ref(f"feature:{spec.lookup_key}")
                params = {"lookup_key": spec.lookup_key, "name": spec.name, "metadata": _marks(self.owner, "feature")}
                self.add(
                    Change(
                        "create",
                        "feature",
                        spec.lookup_key,
                        "missing",
                        params=params,
                        creates=f"feature:{spec.lookup_key}",
                    )
                )
                continue
            self.feature_ids[spec.lookup_key] = found.id
            if not _owned(found.metadata, self.owner):
                self.notes.append(f"feature {spec.lookup_key} ({found.id}) is not provisioned here: used as it is")
            elif found.name != spec.name or not found.active:
                reason = "archived" if not found.active else f"name {found.name!r} -> {spec.name!r}"
                self.add(
                    Change("update", "feature", spec.lookup_key, reason, found.id, {"name": spec.name, "active": True})
                )

    def _stray_features(self) -> None:
        wanted = {f.lookup_key for f in self.description.features}
        for found in self.account.features:
            if _owned(found.metadata, self.owner) and found.active and found.lookup_key not in wanted:
                self.add(
                    Change("archive", "feature", found.lookup_key, "no plan names it", found.id, {"active": False})
                )

    def _meters(self) -> None:
        active = {m.event_name: m for m in self.account.meters if m.active}
        for spec in self.description.meters:
            found = active.get(spec.event_name)
            if found is not None:
                self.meter_ids[spec.event_name] = found.id
                continue
            self.meter_ids[spec.event_name] = Ref(f"meter:{spec.event_name}")
            params = {
                "display_name": spec.display_name,
                "event_name": spec.event_name,
                "default_aggregation": {"formula": spec.formula},
                "customer_mapping": {"event_payload_key": spec.customer_key, "type": "by_id"},
                "value_settings": {"event_payload_key": spec.value_key},
            }
            self.add(
                Change("create", "meter", spec.event_name, "missing", params=params, creates=f"meter:{spec.event_name}")
            )

    # ---- products and prices -------------------------------------------------------------------------------

    def _owned_products(self) -> list[ObservedProduct]:
        return [p for p in self.account.products if _owned(p.metadata, self.owner)]

    def _products(self) -> None:
        by_slot = {p.metadata.get(SLOT_KEY): p for p in sorted(self._owned_products(), key=lambda p: not p.active)}
        for spec in self.description.products:
            found = by_slot.get(f"plan:{spec.key}")
            if found is None:
                self.product_ids[spec.key] = Ref(f"product:{spec.key}")
                params: dict[str, Any] = {"name": spec.name, "metadata": _marks(self.owner, f"plan:{spec.key}")}
                if spec.description:
                    params["description"] = spec.description
                self.add(Change("create", "product", spec.key, "missing", params=params, creates=f"product:{spec.key}"))
                continue
            self.product_ids[spec.key] = found.id
            drift = _product_drift(found, spec)
            if drift:
                params = {"name": spec.name, "description": spec.description or "", "active": True}
                self.add(Change("update", "product", spec.key, drift, found.id, params))
        wanted = {f"plan:{s.key}" for s in self.description.products}
        for found in self._owned_products():
            if found.active and found.metadata.get(SLOT_KEY) not in wanted:
                self.add(Change("archive", "product", found.name, "no plan names it", found.id, {"active": False}))

    def _prices(self, spec: ProductSpec) -> None:
        product = self.product_ids[spec.key]
        for price in spec.prices:
            self._price(spec.key, product, price)

    def _price(self, plan_key: str, product: str | Ref, spec: PriceSpec) -> None:
        holder = next((p for p in self.account.prices if p.lookup_key == spec.lookup_key), None)
        if holder is not None and not _owned(holder.metadata, self.owner):
            self.conflicts.append(
                f"lookup key {spec.lookup_key} is held by {holder.id}, which this stack does not own: remove the key "
                f"from it, or add metadata {OWNER_KEY}={self.owner} and {SLOT_KEY}={spec.lookup_key} to adopt it"
            )
            self.price_ids[spec.lookup_key] = holder.id
            return
        if holder is not None and holder.product == product and self._same_terms(holder, spec):
            self.price_ids[spec.lookup_key] = holder.id
            if not holder.active or holder.nickname != (spec.nickname or spec.lookup_key):
                params = {"active": True, "nickname": spec.nickname or spec.lookup_key}
                self.add(Change("update", "price", spec.lookup_key, "archived or renamed", holder.id, params))
            return
        self._replace_price(plan_key, product, spec, holder)

    def _replace_price(self, plan_key: str, product: str | Ref, spec: PriceSpec, holder: ObservedPrice | None) -> None:
        """A price with the new terms takes the lookup key (an archived earlier one comes back, or a new one)."""
        reason = "missing" if holder is None else f"terms {self._terms_of(holder)} -> {spec.terms()}"
        earlier = next(
            (
                p
                for p in self.account.prices
                if p.product == product
                and _owned(p.metadata, self.owner)
                and p.metadata.get(SLOT_KEY) == spec.lookup_key
                and self._same_terms(p, spec)
            ),
            None,
        )
        if earlier is not None:
            self.price_ids[spec.lookup_key] = earlier.id
            params: dict[str, Any] = {"active": True, "lookup_key": spec.lookup_key, "transfer_lookup_key": True}
            self.add(
                Change("update", "price", spec.lookup_key, f"{reason} (an earlier price again)", earlier.id, params)
            )
        else:
            self.price_ids[spec.lookup_key] = Ref(f"price:{spec.lookup_key}")
            self.add(
                Change(
                    "create",
                    "price",
                    spec.lookup_key,
                    reason,
                    params=self._price_params(plan_key, product, spec, transfer=holder is not None),
                    creates=f"price:{spec.lookup_key}",
                )
            )
        # The superseded price is archived by _stray_prices (it is no longer any lookup key's price).

    def _price_params(self, plan_key: str, product: str | Ref, spec: PriceSpec, *, transfer: bool) -> dict[str, Any]:
        recurring: dict[str, Any] = {"interval": spec.interval, "interval_count": spec.interval_count}
        if spec.meter:
            recurring.update({"usage_type": "metered", "meter": self.meter_ids[spec.meter]})
        params: dict[str, Any] = {
            "product": product,
            "currency": spec.currency,
            "unit_amount": spec.unit_amount,
            "recurring": recurring,
            "lookup_key": spec.lookup_key,
            "nickname": spec.nickname or spec.lookup_key,
            "metadata": _marks(self.owner, spec.lookup_key, tollgate_plan=plan_key),
        }
        if transfer:
            params["transfer_lookup_key"] = True
        return params

    def _same_terms(self, price: ObservedPrice, spec: PriceSpec) -> bool:
        meter = self.meter_ids.get(spec.meter) if spec.meter else None
        return (
            price.unit_amount == spec.unit_amount
            and price.currency == spec.currency
            and price.interval == spec.interval
            and price.interval_count == spec.interval_count
            and price.meter == meter
        )

    def _terms_of(self, price: ObservedPrice) -> str:
        return f"{price.unit_amount} {price.currency}/{price.interval}"

    def _stray_prices(self) -> None:
        """Every owned active price that is not the price of a lookup key the description names is archived."""
        keep = {v for v in self.price_ids.values() if isinstance(v, str)}
        owned_products = {p.id for p in self._owned_products()}
        for price in self.account.prices:
            stray = price.active and price.id not in keep and price.product in owned_products
            if stray and _owned(price.metadata, self.owner):
                why = "superseded" if price.metadata.get(SLOT_KEY) in self.price_ids else "no plan names it"
                self.add(Change("archive", "price", price.lookup_key or price.id, why, price.id, {"active": False}))

    # ---- entitlements --------------------------------------------------------------------------------------

    def _product_features(self) -> None:
        attached: dict[str, dict[str, str]] = {}
        for link in self.account.product_features:
            attached.setdefault(link.product, {})[link.feature] = link.id
        for spec in self.description.products:
            product = self.product_ids[spec.key]
            have = attached.get(product, {}) if isinstance(product, str) else {}
            wanted = {self.feature_ids[k]: k for k in spec.features}
            for feature, lookup_key in wanted.items():
                if feature not in have:
                    params = {"entitlement_feature": feature}
                    self.add(
                        Change(
                            "attach",
                            "product_feature",
                            f"{spec.key}/{lookup_key}",
                            "missing",
                            params=params,
                            parent=product,
                        )
                    )
            for feature, link_id in have.items():
                if feature not in wanted:
                    self.add(
                        Change(
                            "detach",
                            "product_feature",
                            f"{spec.key}/{feature}",
                            "no longer the plan's",
                            link_id,
                            parent=product,
                        )
                    )

    # ---- the Customer Portal -------------------------------------------------------------------------------

    def _portal(self) -> None:
        owned = [p for p in self.account.portals if _owned(p.metadata, self.owner)]
        owned.sort(key=lambda p: not p.active)
        if self.description.portal is None:
            for found in owned:
                if found.active:
                    self.add(
                        Change(
                            "archive", "portal_configuration", "portal", "no plan to offer", found.id, {"active": False}
                        )
                    )
            return
        desired = portal_settings(self.description, self.product_ids, self.price_ids)
        primary, extra = (owned[0], owned[1:]) if owned else (None, [])
        params = portal_params(desired, self.owner)
        if primary is None:
            self.add(Change("create", "portal_configuration", "portal", "missing", params=params, creates="portal"))
        elif not primary.active or _comparable(primary.settings) != _comparable(desired):
            reason = "deactivated" if not primary.active else "products, prices or features differ"
            self.add(Change("update", "portal_configuration", "portal", reason, primary.id, {**params, "active": True}))
        for found in extra:
            if found.active:
                self.add(
                    Change("archive", "portal_configuration", "portal", "a duplicate", found.id, {"active": False})
                )

    # ---- webhook endpoints ---------------------------------------------------------------------------------

    def _endpoints_of(self, spec: EndpointSpec) -> list[ObservedEndpoint]:
        return [
            e
            for e in self.account.endpoints
            if e.kind == spec.kind and _owned(e.metadata, self.owner) and e.metadata.get(SLOT_KEY) == spec.slot
        ]

    def _endpoint(self, spec: EndpointSpec) -> None:
        current = [e for e in self._endpoints_of(spec) if e.enabled and RETIRING_SINCE_KEY not in e.metadata]
        primary, extra = (current[0], current[1:]) if current else (None, [])
        for duplicate in extra:
            self._retire(duplicate, "a duplicate")
        if primary is None:
            self._create_endpoint(spec, "missing", replaces=None)
        elif spec.eventbridge is not None:
            self._eventbridge_destination(spec, primary)
        elif primary.metadata.get(SECRET_FINGERPRINT_KEY) not in self.signing_secrets:
            # Its signing secret is not in the stack's secret (and Stripe never shows it again): nothing it sends
            # can verify, so a new endpoint replaces it at once.
            self._create_endpoint(spec, "its signing secret is not in the stack's secret", replaces=primary.id)
            self.add(Change("disable", spec.kind, spec.slot, "replaced (signing secret unknown)", primary.id))
        elif spec.api_version and primary.api_version != spec.api_version:
            # Stripe cannot change an endpoint's API version: a new endpoint replaces it, both deliver for a while.
            self._create_endpoint(spec, f"API version {primary.api_version} -> {spec.api_version}", replaces=primary.id)
            self._retire(primary, "replaced (API version)")
        elif self.rotate:
            self._create_endpoint(spec, "signing secret rotation", replaces=primary.id)
            self._retire(primary, "replaced (secret rotation)")
        elif primary.url != spec.url or sorted(primary.events) != sorted(spec.events):
            params = _endpoint_update_params(spec)
            self.add(Change("update", spec.kind, spec.slot, "URL or event types differ", primary.id, params))

    def _eventbridge_destination(self, spec: EndpointSpec, primary: ObservedEndpoint) -> None:
        """No signing secret to check; AWS deletes a partner source nobody associated within 7 days (Stripe then
        disables the destination), and the snapshot API version cannot change: each needs a new destination."""
        if primary.event_source_status == "deleted":
            self._create_endpoint(spec, "its partner event source was deleted", replaces=primary.id)
            self.add(Change("disable", spec.kind, spec.slot, "replaced (partner event source deleted)", primary.id))
        elif spec.api_version and primary.api_version and primary.api_version != spec.api_version:
            self._create_endpoint(spec, f"API version {primary.api_version} -> {spec.api_version}", replaces=primary.id)
            self._retire(primary, "replaced (API version)")
        elif sorted(primary.events) != sorted(spec.events):
            params = {"enabled_events": list(spec.events)}
            self.add(Change("update", spec.kind, spec.slot, "event types differ", primary.id, params))

    def _create_endpoint(self, spec: EndpointSpec, reason: str, replaces: str | None) -> None:
        marks = _marks(self.owner, spec.slot)
        params: dict[str, Any]
        if spec.eventbridge is not None:
            params = {
                "name": f"{self.owner} {spec.payload} events (EventBridge)"[:100],
                "description": f"{self.owner}: {spec.payload} events the stack handles, through EventBridge",
                "type": "amazon_eventbridge",
                "event_payload": spec.payload,
                "enabled_events": list(spec.events),
                "amazon_eventbridge": {
                    "aws_account_id": spec.eventbridge.aws_account_id,
                    "aws_region": spec.eventbridge.aws_region,
                },
                "metadata": marks,
            }
            if spec.api_version:
                params["snapshot_api_version"] = spec.api_version
        elif spec.kind == "webhook_endpoint":
            params = {
                "url": spec.url,
                "enabled_events": list(spec.events),
                "api_version": spec.api_version,
                "description": f"{self.owner}: snapshot events the webhook handles",
                "metadata": marks,
            }
        else:
            params = {
                "name": f"{self.owner} thin events"[:100],
                "description": f"{self.owner}: thin events the webhook handles",
                "type": "webhook_endpoint",
                "event_payload": "thin",
                "enabled_events": list(spec.events),
                "webhook_endpoint": {"url": spec.url},
                "include": ["webhook_endpoint.signing_secret", "webhook_endpoint.url"],
                "metadata": marks,
            }
        # ``replaces`` keeps a rotation's create distinct from the first one under idempotency.
        self.add(Change("create", spec.kind, spec.slot, reason, params=params, creates=spec.slot, parent=replaces))

    def _retire(self, endpoint: ObservedEndpoint, reason: str) -> None:
        params = {"metadata": {RETIRING_SINCE_KEY: str(self.now)}}
        self.add(Change("retire", endpoint.kind, endpoint.metadata.get(SLOT_KEY, ""), reason, endpoint.id, params))

    def _retired_endpoints(self) -> None:
        """Replaced endpoints past the rotation window are disabled and their signing secrets dropped."""
        wanted = {e.slot for e in self.description.endpoints}
        for found in self.account.endpoints:
            if not _owned(found.metadata, self.owner) or not found.enabled:
                if _owned(found.metadata, self.owner) and _expired(found.metadata, self.now):
                    self._prune(found)
                continue
            slot = found.metadata.get(SLOT_KEY, "")
            if _expired(found.metadata, self.now) or slot not in wanted:
                why = "rotation window over" if slot in wanted else "the description has no such endpoint"
                self.add(Change("disable", found.kind, slot, why, found.id))
                if slot in wanted:
                    self._prune(found)

    def _prune(self, endpoint: ObservedEndpoint) -> None:
        secret = endpoint.metadata.get(SECRET_FINGERPRINT_KEY)
        if secret and secret in self.signing_secrets:
            self.prune.add(secret)


def _expired(metadata: Mapping[str, str], now: int) -> bool:
    since = metadata.get(RETIRING_SINCE_KEY)
    return since is not None and since.isdigit() and now - int(since) >= ROTATION_WINDOW_SECONDS


def _product_drift(found: ObservedProduct, spec: ProductSpec) -> str:
    if not found.active:
        return "archived"
    if found.name != spec.name:
        return f"name {found.name!r} -> {spec.name!r}"
    if (found.description or None) != (spec.description or None):
        return "description differs"
    return ""


def _endpoint_update_params(spec: EndpointSpec) -> dict[str, Any]:
    if spec.kind == "webhook_endpoint":
        return {"url": spec.url, "enabled_events": list(spec.events), "disabled": False}
    return {"enabled_events": list(spec.events), "webhook_endpoint": {"url": spec.url}}


def portal_settings(
    description: StripeDescription, product_ids: Mapping[str, str | Ref], price_ids: Mapping[str, str | Ref]
) -> dict[str, Any]:
    """The portal configuration's features, exactly the catalog's products and seat prices, in catalog order."""
    products: list[dict[str, Any]] = []
    adjustable = False
    for spec in description.products:
        prices = [price_ids[p.lookup_key] for p in spec.licensed()]
        if not prices:
            continue
        entry: dict[str, Any] = {"product": product_ids[spec.key], "prices": prices}
        if spec.max_quantity > 1:
            adjustable = True
            entry["adjustable_quantity"] = {
                "enabled": True,
                "minimum": spec.min_quantity,
                "maximum": spec.max_quantity,
            }
        products.append(entry)
    allowed = ["price", "quantity"] if adjustable else ["price"]
    return {
        "default_return_url": description.portal.return_url if description.portal else None,
        "features": {
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": True},
            "subscription_cancel": {"enabled": True, "mode": "at_period_end", "proration_behavior": "none"},
            "subscription_update": {
                "enabled": bool(products),
                "default_allowed_updates": allowed,
                "proration_behavior": "create_prorations",
                "products": products,
            },
        },
    }


def observed_portal_settings(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a Stripe ``billing_portal.configuration`` that ``portal_settings`` describes, in its shape."""
    features = configuration.get("features") or {}
    update = features.get("subscription_update") or {}
    cancel = features.get("subscription_cancel") or {}
    products: list[dict[str, Any]] = []
    for entry in update.get("products") or []:
        product: dict[str, Any] = {"product": entry.get("product"), "prices": list(entry.get("prices") or [])}
        quantity = entry.get("adjustable_quantity") or {}
        if quantity.get("enabled"):
            product["adjustable_quantity"] = {
                "enabled": True,
                "minimum": quantity.get("minimum"),
                "maximum": quantity.get("maximum"),
            }
        products.append(product)
    return {
        "default_return_url": configuration.get("default_return_url"),
        "features": {
            "invoice_history": {"enabled": bool((features.get("invoice_history") or {}).get("enabled"))},
            "payment_method_update": {"enabled": bool((features.get("payment_method_update") or {}).get("enabled"))},
            "subscription_cancel": {
                "enabled": bool(cancel.get("enabled")),
                "mode": cancel.get("mode"),
                "proration_behavior": cancel.get("proration_behavior"),
            },
            "subscription_update": {
                "enabled": bool(update.get("enabled")),
                "default_allowed_updates": list(update.get("default_allowed_updates") or []),
                "proration_behavior": update.get("proration_behavior"),
                "products": products,
            },
        },
    }


def portal_params(settings: Mapping[str, Any], owner: str) -> dict[str, Any]:
    params: dict[str, Any] = {"features": settings["features"], "metadata": _marks(owner, "portal")}
    if settings.get("default_return_url"):
        params["default_return_url"] = settings["default_return_url"]
    return params


def _comparable(settings: Mapping[str, Any]) -> str:
    """Settings as a canonical string: price order within a product does not matter, Refs never match ids."""

    def canonical(value: Any) -> Any:
        if isinstance(value, Ref):
            return {"ref": value.name}
        if isinstance(value, Mapping):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [canonical(v) for v in value]
        return value

    plain = canonical(settings)
    for product in plain.get("features", {}).get("subscription_update", {}).get("products", []):
        product["prices"] = sorted(str(p) for p in product.get("prices", []))
    return json.dumps(plain, sort_keys=True)


def plan(
    description: StripeDescription,
    account: Account,
    *,
    now: int,
    signing_secrets: Iterable[str] = (),
    rotate: bool = False,
) -> Plan:
    """The changes that bring ``account`` in step with ``description`` (nothing when it already is).

    ``signing_secrets`` are the fingerprints of the secrets the stack's secret holds; ``rotate`` replaces every
    endpoint (a new signing secret) while the old ones keep delivering for ``ROTATION_WINDOW_SECONDS``.
    """
    return _Planner(description, account, now, rotate=rotate, signing_secrets=frozenset(signing_secrets)).run()


def plan_teardown(owner: str, account: Account) -> Plan:
    """What deleting the stack does: archive, deactivate or disable everything owned; delete nothing, touch no meter."""
    archived: list[tuple[Kind, str, str, bool, Mapping[str, str]]] = [
        *(("product", p.name, p.id, p.active, p.metadata) for p in account.products),
        *(("price", p.lookup_key or p.id, p.id, p.active, p.metadata) for p in account.prices),
        *(("feature", f.lookup_key, f.id, f.active, f.metadata) for f in account.features),
        *(("portal_configuration", "portal", c.id, c.active, c.metadata) for c in account.portals),
    ]
    changes = [
        Change("archive", kind, key, "stack deleted", oid, {"active": False})
        for kind, key, oid, active, metadata in archived
        if active and _owned(metadata, owner)
    ]
    changes.extend(
        Change("disable", e.kind, e.metadata.get(SLOT_KEY, ""), "stack deleted", e.id)
        for e in account.endpoints
        if e.enabled and _owned(e.metadata, owner)
    )
    return Plan(owner, tuple(changes))


def iter_refs(value: Any) -> Iterator[Ref]:
    """The Refs inside a change's params (the applier resolves them in order)."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_refs(item)


def resolve_refs(value: Any, ids: Mapping[str, str]) -> Any:
    """``value`` with every Ref replaced by the id recorded for it."""
    if isinstance(value, Ref):
        return ids[value.name]
    if isinstance(value, Mapping):
        return {k: resolve_refs(v, ids) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_refs(v, ids) for v in value]
    return value


def names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))
