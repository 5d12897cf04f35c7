"""The billing engine, one module per Stripe resource area; each service gets its collaborators in its constructor.

Services run under the store lock (the request pipeline and the scheduler take it) and never import the HTTP
layer. Listeners (invoice paid, dunning exhausted, bank debit settled, event emitted) are wired by `app.py`.
"""
