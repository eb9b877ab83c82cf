"""The local stack: real servers from package registries, run on 127.0.0.1 for development and tests."""
