"""Payload dataclasses to and from plain JSON values, checking types on the way in; and their JSON Schema.

One description serves both: the dataclass type hints. The JSON Schema files in ``schemas/json/`` are
generated from them (``python -m schemas.generate``) and a test fails when the files and the code disagree.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from schemas.errors import PayloadError

__all__ = ["from_payload", "json_schema", "to_payload"]

T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if not f.name.isupper())


def to_payload(obj: Any) -> Any:
    """A dataclass (recursively) as JSON values; fields marked ``omit_none`` are left out when None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in _fields(type(obj)):
            value = getattr(obj, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = to_payload(value)
        return out
    if isinstance(obj, list | tuple):
        return [to_payload(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_payload(v) for k, v in obj.items()}
    return obj


def from_payload(cls: type[T], data: Any, *, where: str = "payload") -> T:
    """Build ``cls`` from JSON values, refusing missing, unknown or mistyped fields.

    Raises:
        PayloadError: the data does not match the type hints of ``cls``.
    """
    try:
        return typing.cast(T, _converter(typing.cast(Any, cls))(data))
    except _Mismatch as exc:
        raise PayloadError(where + exc.path, exc.reason) from None


class _Mismatch(Exception):
    """A value that does not fit its type; ``path`` grows as the error travels up (".field", "[3]")."""

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(reason)


Converter = Callable[[Any], Any]


@functools.cache
def _converter(hint: Any) -> Converter:
    """A function checking (and converting) one JSON value against ``hint``, built once per type: decoding
    every event through typing reflection was a fifth of the projector's time."""
    origin = get_origin(hint)
    if hint is Any or hint is object:
        return _identity
    if origin in (Union, types.UnionType):
        return _union([_converter(o) for o in get_args(hint) if o is not type(None)],
                      nullable=type(None) in get_args(hint))
    if origin is Literal:
        return _literal(get_args(hint))
    if dataclasses.is_dataclass(hint):
        return _dataclass(typing.cast(type, hint))
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return _list(_converter(item))
    if origin is dict or hint is dict:
        return _dict
    return _scalar(hint)


def _identity(value: Any) -> Any:
    return value


def _dict(value: Any) -> Any:
    if not isinstance(value, dict):
        raise _Mismatch("expected an object")
    return value


def _union(options: list[Converter], *, nullable: bool) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and nullable:
            return None
        reasons = []
        for option in options:
            try:
                return option(value)
            except _Mismatch as exc:
                reasons.append(exc.reason)
        raise _Mismatch("; ".join(reasons))

    return convert


def _literal(allowed: tuple[Any, ...]) -> Converter:
    def convert(value: Any) -> Any:
        if value not in allowed:
            raise _Mismatch(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
        return value

    return convert


def _list(item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            raise _Mismatch("expected an array")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except _Mismatch as exc:
                exc.path = f"[{i}]{exc.path}"
                raise
        return out

    return convert


def _scalar(hint: Any) -> Converter:
    if hint is bool:
        def ok(v: Any) -> bool:
            return isinstance(v, bool)
    elif hint is int:
        def ok(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)
    elif hint is float:
        def convert_float(value: Any) -> Any:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise _Mismatch(f"expected float, got {type(value).__name__}")

        return convert_float
    elif hint is str:
        def ok(v: Any) -> bool:
            return isinstance(v, str)
    else:
        msg = f"unsupported type {hint!r}"
        raise TypeError(msg)
    name = hint.__name__

    def convert(value: Any) -> Any:
        if not ok(value):
            raise _Mismatch(f"expected {name}, got {type(value).__name__}")
        return value

    return convert


def _dataclass(cls: type) -> Converter:
    hints = _hints(cls)
    specs = [(f.name, _converter(hints[f.name]),
              f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING) for f in _fields(cls)]
    known = frozenset(name for name, _, _ in specs)

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch("expected an object")
        if not known.issuperset(value):
            raise _Mismatch(f"unknown field(s) {', '.join(sorted(set(value) - known))}")
        kwargs: dict[str, Any] = {}
        for name, conv, required in specs:
            if name in value:
                try:
                    kwargs[name] = conv(value[name])
                except _Mismatch as exc:
                    exc.path = f".{name}{exc.path}"
                    raise
            elif required:
                raise _Mismatch(f"missing field {name}")
        return cls(**kwargs)

    return convert


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a payload dataclass."""
    return _schema(cls, omit_none=False)


def _schema(hint: Any, *, omit_none: bool) -> dict[str, Any]:
    origin = get_origin(hint)
    if hint is Any or hint is object:
        return {}
    if origin in (Union, types.UnionType):
        options = [o for o in get_args(hint) if o is not type(None)]
        inner = _schema(options[0], omit_none=omit_none) if len(options) == 1 else {
            "anyOf": [_schema(o, omit_none=omit_none) for o in options]}
        if omit_none or type(None) not in get_args(hint):
            return inner
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if dataclasses.is_dataclass(hint):
        cls = typing.cast(type, hint)
        hints = _hints(cls)
        props = {f.name: _schema(hints[f.name], omit_none=bool(f.metadata.get("omit_none")))
                 for f in _fields(cls)}
        required = [f.name for f in _fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return {"type": "array", "items": _schema(item, omit_none=False)}
    if origin is dict or hint is dict:
        return {"type": "object"}
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {"type": names[hint]}
