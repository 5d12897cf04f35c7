"""The domain: pure rules and records, no I/O and no vendor SDK.

The access decision, the projection of Stripe objects into the product's subscription state, watermarks that order
those states, subscription transitions and the domain events they cause, the usage contract, the Stripe event
envelope and its signature. Everything here is a function of its arguments; ports, adapters and services build on it.
"""
