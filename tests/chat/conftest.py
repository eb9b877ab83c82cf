"""Fixtures of the chat tests (defined in _chat_support, next to the helpers they use)."""

from _chat_support import chat_run, chat_servers

__all__ = ["chat_run", "chat_servers"]
