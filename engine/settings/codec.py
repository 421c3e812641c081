"""One generic, strict JSON codec for trees of frozen dataclasses.

`to_dict` turns a dataclass tree into plain JSON values; `from_dict` rebuilds it and checks
every value against the field's type annotation and its declared range. Every error names the
dotted path of the offending field (``controls[1].weight``), so a broken settings file says
exactly what is wrong instead of being silently corrected.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A settings value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with a numeric range the codec and `check_ranges` enforce."""
    meta = {"ge": ge, "le": le, "gt": gt, "lt": lt, "doc": doc}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return dataclasses.field(default=default, metadata=meta)


def _range_problem(value: float, meta: typing.Mapping[str, Any]) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    checks = (
        ("ge", lambda v, b: v >= b, ">="),
        ("le", lambda v, b: v <= b, "<="),
        ("gt", lambda v, b: v > b, ">"),
        ("lt", lambda v, b: v < b, "<"),
    )
    for key, ok, symbol in checks:
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            return f"must be {symbol} {bound}, got {value}"
    return None


def check_ranges(obj: Any, path: str = "") -> None:
    """Raise SettingsError for the first field of `obj` whose value breaks its declared range."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = _range_problem(value, f.metadata)
            if problem:
                raise SettingsError(_join(path, f.name), problem)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def to_dict(obj: Any) -> Any:
    """Convert a dataclass tree (with tuples, enums, None) to JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass `cls` from `data`, checking keys, types and ranges; errors name the field."""
    if not isinstance(data, dict):
        raise SettingsError(path, f"expected an object for {cls.__name__}, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SettingsError(
            _join(path, unknown[0]), f"unknown key; {cls.__name__} has: {', '.join(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SettingsError(sub, "missing required key")
            continue
        value = _decode(hints[name], data[name], sub)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = _range_problem(value, f.metadata)
            if problem:
                raise SettingsError(sub, problem)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except SettingsError as exc:
        raise SettingsError(_join(path, exc.path), exc.message) from None
    except (TypeError, ValueError) as exc:
        raise SettingsError(path, str(exc)) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _decode(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise SettingsError(path, "must not be null")
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error names the exact field
            return _decode(options[0], value, path)
        errors = []
        for option in options:
            try:
                return _decode(option, value, path)
            except SettingsError as exc:
                errors.append(exc.message)
        raise SettingsError(path, " or ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise SettingsError(path, f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SettingsError(path, f"expected a list, got {_kind(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SettingsError(path, f"expected {len(args)} items, got {len(value)}")
        return tuple(_decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in tp)
            raise SettingsError(path, f"must be one of {valid}, got {value!r}") from None
    return _decode_scalar(tp, value, path)


def _decode_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise SettingsError(path, f"expected a boolean, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(path, f"expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(path, f"expected a number, got {_kind(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SettingsError(path, f"expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"{path}: the codec does not support type {tp!r}")
