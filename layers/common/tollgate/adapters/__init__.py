"""Adapters: the only modules that talk to Stripe and AWS. They translate SDK errors into tollgate.errors."""
