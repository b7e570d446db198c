"""Payload dataclasses to and from plain JSON values, checking types on the way in; and their JSON Schema.

One description serves both: the dataclass type hints. The JSON Schema files in ``schemas/json/`` are
generated from them (``python -m schemas.generate``) and a test fails when the files and the code disagree.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from schemas.errors import PayloadError

__all__ = ["from_payload", "json_schema", "to_payload"]

T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


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
    return typing.cast(T, _convert(cls, data, where))


def _fail(where: str, reason: str) -> PayloadError:
    return PayloadError(where, reason)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except PayloadError as exc:
                errors.append(exc.reason)
        raise _fail(where, "; ".join(errors))
    if origin is Literal:
        if value not in get_args(hint):
            raise _fail(where, f"{value!r} is not one of {', '.join(map(repr, get_args(hint)))}")
        return value
    if dataclasses.is_dataclass(hint):
        return _convert_dataclass(typing.cast(type, hint), value, where)
    if origin is list:
        if not isinstance(value, list):
            raise _fail(where, "expected an array")
        (item,) = get_args(hint) or (Any,)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _fail(where, "expected an object")
        return value
    return _convert_scalar(hint, value, where)


def _convert_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:
        raise _fail(where, f"unsupported type {hint!r}")
    if not ok:
        raise _fail(where, f"expected {hint.__name__}, got {type(value).__name__}")
    return value


def _convert_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, "expected an object")
    hints = _hints(cls)
    known = {f.name for f in _fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name in value:
            kwargs[f.name] = _convert(hints[f.name], value[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail(where, f"missing field {f.name}")
    return cls(**kwargs)


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
