"""Webhooks against the real services: the API, delivery, secrets, and the whole pipeline."""
