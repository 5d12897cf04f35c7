"""Hosted pages in plain HTML: Checkout (card, bank debit, 3DS-like authentication) and the customer portal.

Form POSTs move state through the billing engine; a completed Checkout answers 303 to `success_url` only after the
`checkout.session.completed` deliveries had their first attempt (bounded wait), like Stripe.
"""
