"""Commands an operator runs from a shell (``python -m tollgate.commands.<name>``), wired by the composition root."""
