"""DynamoDB adapters: each port the product keeps in its single billing table (keys in docs/data-model.md)."""
