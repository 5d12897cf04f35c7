"""Replay the Stripe events whose delivery to this endpoint failed (tollgate.services.event_replay).

Run it where the functions' settings are set (``TABLE_NAME``, ``STRIPE_SECRET_ARN``, ``PLAN_CATALOG``) with AWS
credentials::

    python -m tollgate.commands.replay_events --days 30
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tollgate.commands.replay_events",
        description="Apply the Stripe events that were never delivered successfully, as the webhook would.",
    )
    parser.add_argument("--days", type=int, default=30, help="how far back to look (1-30, Stripe's listing limit)")
    args = parser.parse_args(argv)

    from tollgate.bootstrap import container

    report = container().event_replay.run(args.days)
    json.dump({"listed": report.listed, "outcomes": dict(report.outcomes), "failed": report.failed}, sys.stdout)
    sys.stdout.write("\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
