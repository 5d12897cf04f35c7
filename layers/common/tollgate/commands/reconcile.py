"""Reconcile the table with Stripe (tollgate.services.reconcile) from an ops machine.

Run it where the functions' settings are set (``TABLE_NAME``, ``STRIPE_SECRET_ARN``, ``EVENT_BUS_NAME``,
``PLAN_CATALOG``) with AWS credentials::

    python -m tollgate.commands.reconcile --customer cus_123      # or --all
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tollgate.commands.reconcile", description="Re-project subscriptions from Stripe into the table."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--customer", help="one Stripe customer id (cus_...)")
    target.add_argument("--all", action="store_true", help="every subscription in the Stripe account")
    args = parser.parse_args(argv)

    from tollgate.bootstrap import container

    report = container().reconciler.run(None if args.all else args.customer)
    json.dump(asdict(report), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
