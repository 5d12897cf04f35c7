"""Stripe adapters over one ``StripeClient`` factory (pinned API version, explicit timeouts and retries).

Named ``stripe_api`` so it never shadows the ``stripe`` SDK package.
"""
