"""Cryptography adapters. Only well-reviewed libraries are used here (argon2-cffi, hashlib)."""
