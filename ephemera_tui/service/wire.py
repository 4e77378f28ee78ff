"""The resident engine's wire format: the engine's frozen domain objects as JSON and back.

A value is encoded as plain JSON; a dataclass as an object with a ``"$"`` member naming its
type (one of :data:`TYPES`), so the client gets back the same objects the in-process engine
returns. Tuples travel as lists and come back as tuples where the field says so.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from ..engine.domain import (
    CacheStats,
    Change,
    CheckReport,
    Draft,
    EngineStats,
    Hit,
    ImportReport,
    Memory,
    SearchResult,
    SyncReport,
)
from ..engine.errors import EphemeraError, ValidationError
from ..engine.filters import SearchFilter

PROTOCOL_VERSION = 1
"""Bumped when a call or a shape changes incompatibly; client and service must agree."""

TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        CacheStats,
        Change,
        CheckReport,
        Draft,
        EngineStats,
        Hit,
        ImportReport,
        Memory,
        SearchFilter,
        SearchResult,
        SyncReport,
    )
}


def register(cls: type) -> type:
    """Add a dataclass to the types the wire carries (for reports defined elsewhere)."""
    TYPES[cls.__name__] = cls
    return cls


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (domain objects keep their type name)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"$": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} over the wire")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _shaped(value: Any, hint: Any) -> Any:
    """Lists back to tuples where the field is a tuple (recursively for nested objects)."""
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_shaped(v, args[0]) for v in value)
        return tuple(_shaped(v, a) for v, a in zip(value, args, strict=False))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in typing.get_args(hint):
            if arg is not type(None) and value is not None:
                return _shaped(value, arg)
    return value


def decode(value: Any) -> Any:
    """The objects :func:`encode` made; ValidationError for a malformed or unknown shape."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        name = value.get("$")
        if name is None:
            return {k: decode(v) for k, v in value.items()}
        cls = TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValidationError(f"unknown object type {name!r} in the request")
        hints = _hints(cls)
        fields = {k: _shaped(decode(v), hints.get(k)) for k, v in value.items() if k != "$"}
        try:
            return cls(**fields)
        except EphemeraError:
            raise
        except TypeError as exc:
            raise ValidationError(f"bad {name}: {exc}") from exc
    return value
