"""JSON encoding for the whole server, behind one module (orjson: ~1 µs per message where the
standard library takes ~6 µs)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return orjson.dumps(value)


def dumps_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
