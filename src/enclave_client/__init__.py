"""Enclave Python SDK (async)."""

__all__: list[str] = []
