"""Outgoing webhooks: a business's own integrations told of its events (docs/webhooks.md)."""
