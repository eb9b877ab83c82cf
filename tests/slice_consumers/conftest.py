"""Fixtures of the consumer tests (defined in _consumers_support, next to the helpers they use)."""

from _consumers_support import consumer_servers, roles, topic_namespace, watch

__all__ = ["consumer_servers", "roles", "topic_namespace", "watch"]
