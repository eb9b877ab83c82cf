"""The `culture` command."""
