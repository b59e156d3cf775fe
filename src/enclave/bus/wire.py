"""Signals as bytes between nodes: JSON (the server's one codec) of the signal's fields.

Every type in the `Signal` union of `enclave.domain.signals` is carried, field by field, from
its type hints: strings and their `NewType`s, numbers, booleans, `None`, enums, bytes (hex),
events, tuples and JSON objects. A signal type added to the union later is carried without a
change here, as long as its fields are of these kinds (the bus contract test checks every one).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Union

from enclave import codec
from enclave.domain.events import Event, EventType, payload_from_json
from enclave.domain.signals import Signal

__all__ = ["WireError", "decode", "encode", "signal_types"]


class WireError(ValueError):
    """Bytes that are not a signal this version knows."""


def signal_types() -> dict[str, type[Any]]:
    """Every signal class by name."""
    return {cls.__name__: cls for cls in typing.get_args(Signal)}


_TYPES = signal_types()


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "c": event.conversation_id,
        "s": event.seq,
        "t": event.type.value,
        "a": event.actor_id,
        "at": event.created_at,
        "d": event.data,
    }


def _event(value: Any) -> Event:
    return Event(
        conversation_id=value["c"],
        seq=int(value["s"]),
        actor_id=value["a"],
        created_at=int(value["at"]),
        payload=payload_from_json(EventType(value["t"]), value["d"]),
    )


def _to_json(value: Any) -> Any:
    if isinstance(value, Event):
        return _event_json(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    return value


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(cls.__name__)
    if found is None:
        found = _HINTS[cls.__name__] = typing.get_type_hints(cls)
    return found


def _from_json(hint: Any, value: Any) -> Any:
    """`value` (decoded JSON) as the type `hint` names."""
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType such as UserId
        return _from_json(supertype, value)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _from_json(options[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_from_json(item, v) for v in value)
    if origin is dict or hint is Any:
        return value
    if hint is Event:
        return _event(value)
    if hint is bytes:
        return bytes.fromhex(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is float and isinstance(value, int):
        return float(value)
    if hint in (str, int, float, bool):
        if not isinstance(value, hint):
            raise WireError(f"expected {hint.__name__}, got {type(value).__name__}")
        return value
    raise WireError(f"cannot carry a field of type {hint!r}")


def encode(signal: Signal) -> bytes:
    """The signal as compact JSON: its class name and fields."""
    fields = {f.name: _to_json(getattr(signal, f.name)) for f in dataclasses.fields(signal)}
    return codec.dumps({"k": type(signal).__name__, "f": fields})


def decode(data: bytes) -> Signal:
    """The signal `encode` wrote; raises WireError for anything else."""
    try:
        raw = codec.loads(data)
        cls = _TYPES[raw["k"]]
        hints = _hints(cls)
        values = {name: _from_json(hints[name], v) for name, v in raw["f"].items()}
        signal: Signal = cls(**values)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not a signal: {exc}") from exc
    return signal
