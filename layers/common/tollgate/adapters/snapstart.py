"""Lambda SnapStart's runtime hooks (``snapshot_restore_py``, shipped by the Python managed runtime).

With SnapStart on (template parameter ``SnapStart``), Lambda runs init once per published version, snapshots the
memory and restores copies of it for cold starts. Before the snapshot, the hook builds what the typical request uses
(clients, adapters, services), so restores skip that work. After each restore, the hook forgets what must not be
shared between copies: cached secrets (a rotated key is read again) and the ``random`` module's state (every copy
would otherwise draw the same jitter). Tokens and idempotency keys come from ``secrets``/``uuid4`` (the OS's
randomness, never in the snapshot) or are deterministic, so they need nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

SNAPSTART_INITIALIZATION = "snap-start"


def snapstart_enabled() -> bool:
    """Lambda sets ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` while it initializes a version for a snapshot."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == SNAPSTART_INITIALIZATION


def register_hooks(before_snapshot: Callable[[], None], after_restore: Callable[[], None]) -> bool:
    """Registers both hooks when this init is for a snapshot; False (nothing registered) otherwise."""
    if not snapstart_enabled():
        return False
    from snapshot_restore_py import register_after_restore, register_before_snapshot

    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
