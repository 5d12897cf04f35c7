"""Services: the use cases. Each takes plain values (a user id, an email, a plan key) and ports, never an
API Gateway event or a vendor client, and raises ``tollgate.errors``."""
