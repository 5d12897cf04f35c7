"""Ports: one ``typing.Protocol`` per role a service needs from the outside world, and the small records those
roles answer with. Adapters (``tollgate.adapters``) implement them over Stripe, DynamoDB, SQS, EventBridge and
Secrets Manager; tests implement them with in-memory fakes.

``stripe`` — what the product asks of Stripe; ``storage`` — what it keeps in its table; ``messaging`` — what it
hands to queues, buses and metrics.
"""
