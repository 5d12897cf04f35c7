"""Compare the usage ledger with Stripe's meter totals (tollgate.services.usage_drift), and optionally repair.

Run it where the functions' settings are set (``TABLE_NAME``, ``STRIPE_SECRET_ARN``) with AWS credentials::

    python -m tollgate.commands.usage_drift                      # the last USAGE_DRIFT_DAYS_BACK days
    python -m tollgate.commands.usage_drift --day 2026-11-30 --repair
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime


def _day(value: str) -> int:
    try:
        return int(datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC).timestamp())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tollgate.commands.usage_drift",
        description="Report (and with --repair, resend) usage Stripe's meters counted differently from the ledger.",
    )
    parser.add_argument("--day", type=_day, action="append", help="a UTC day (YYYY-MM-DD); repeat for several")
    parser.add_argument("--repair", action="store_true", help="send each shortfall to Stripe (deterministic ids)")
    args = parser.parse_args(argv)

    from tollgate.bootstrap import container

    services = container()
    check = services.usage_drift
    if args.day:
        report = check.check(args.day, repair=args.repair)
    else:
        report = check.check_recent(services.settings.usage_drift_days_back, repair=args.repair)
    json.dump(
        {
            "days": [datetime.fromtimestamp(d, UTC).date().isoformat() for d in report.days],
            "cells_checked": report.cells_checked,
            "drifts": [
                {
                    "customer_id": d.cell.customer_id,
                    "event_name": d.cell.event_name,
                    "day": datetime.fromtimestamp(d.cell.day, UTC).date().isoformat(),
                    "sent": d.sent,
                    "counted": d.counted,
                }
                for d in report.drifts
            ],
            "repaired": len(report.repaired),
            "unrepaired": report.unrepaired,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    unresolved = len(report.drifts) - len(report.repaired) if args.repair else len(report.drifts)
    return 1 if unresolved else 0


if __name__ == "__main__":
    raise SystemExit(main())
