"""Preprocessor parameters: frozen dataclasses whose fields carry bounds and steps, described as
`ParamSpec`s a GUI builds widgets from, and checked with errors that name the field."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from engine.settings.codec import SettingsError, check_ranges

ParamKind = Literal["int", "float", "bool", "choice"]
_KINDS: dict[type, ParamKind] = {int: "int", float: "float", bool: "bool"}


def param(default: Any, *, ge: float | None = None, le: float | None = None, step: float | None = None,
          label: str = "", doc: str = "") -> Any:
    """A parameter field: numbers carry an inclusive range [ge, le] and a widget step (for ints,
    values must lie on the grid ge + n * step); `Literal[...]` fields are choices."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    meta = {"ge": ge, "le": le, "step": step, "label": label, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """What a GUI needs to show one parameter: its widget kind, default, bounds, step or choices."""

    name: str
    label: str
    kind: ParamKind
    default: int | float | bool | str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


def _kind_of(annotation: Any) -> tuple[ParamKind, tuple[str, ...]]:
    if typing.get_origin(annotation) is Literal:
        return "choice", tuple(str(c) for c in typing.get_args(annotation))
    if annotation in _KINDS:
        return _KINDS[annotation], ()
    raise TypeError(f"unsupported parameter type {annotation!r} (use int, float, bool or Literal[...])")


def param_specs(cls: type) -> tuple[ParamSpec, ...]:
    """The widget descriptions of a params dataclass, in field order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a params dataclass")
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        kind, choices = _kind_of(hints[f.name])
        meta = f.metadata
        specs.append(ParamSpec(
            name=f.name, label=meta.get("label") or f.name.replace("_", " ").capitalize(), kind=kind,
            default=f.default, minimum=meta.get("ge"), maximum=meta.get("le"), step=meta.get("step"),
            choices=choices, doc=meta.get("doc", "")))
    return tuple(specs)


def check_params(obj: Any) -> None:
    """Raise SettingsError naming the first field of a params dataclass with a wrong type, a value
    out of range, off its integer step grid, or not one of its choices."""
    hints = typing.get_type_hints(type(obj))
    fields = dataclasses.fields(obj)
    kinds = {f.name: _kind_of(hints[f.name]) for f in fields}
    for f in fields:
        _check_type(f.name, getattr(obj, f.name), *kinds[f.name])
    check_ranges(obj)
    for f in fields:
        value, lower, step = getattr(obj, f.name), f.metadata.get("ge"), f.metadata.get("step")
        if kinds[f.name][0] == "int" and step is not None and lower is not None and (value - lower) % step:
            raise SettingsError(f.name, f"must be {lower} plus a multiple of {step}, got {value}")


def _check_type(name: str, value: Any, kind: ParamKind, choices: tuple[str, ...]) -> None:
    if kind == "choice" and value not in choices:
        raise SettingsError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise SettingsError(name, f"expected true or false, got {value!r}")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise SettingsError(name, f"expected an integer, got {value!r}")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SettingsError(name, f"expected a number, got {value!r}")
