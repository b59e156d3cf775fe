"""Enclave: self-hosted team chat."""

__version__ = "0.1.0"
