"""Webhooks: signed events pushed to tenant endpoints from a transactional outbox."""
