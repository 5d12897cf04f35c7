"""What changed on an object, as Stripe's `*.updated` events show it."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.store import Obj


def diff(before: Obj, after: Obj) -> dict[str, Any]:
    """Top-level previous_attributes for an `*.updated` event."""
    return {k: copy.deepcopy(before.get(k)) for k in after if k != "updated" and before.get(k) != after.get(k)}
