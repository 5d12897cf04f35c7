"""The subscription projection: Stripe's subscriptions cached in the billing table, and how to read them."""
