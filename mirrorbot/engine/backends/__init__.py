"""Readable registries that are not HTTP registries (a storage directory)."""
