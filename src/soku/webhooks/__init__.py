"""Webhooks: a user's endpoints, the events of their posts' outcomes, and signed, retried
deliveries of those events (docs/webhooks.md)."""
