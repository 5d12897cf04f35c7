"""The Stripe webhook: verify the raw bytes, deduplicate with a leased ledger, dispatch by event type, project."""
