"""The kinds of control layer: one per ControlNet unit type that engine.control has a preprocessor
for, each saying how the canvas shows its map and how painting on it behaves."""

from __future__ import annotations

from dataclasses import dataclass

from engine.control import PREPROCESSORS

__all__ = ["CONTROL_KINDS", "ControlKind", "control_kind"]


@dataclass(frozen=True)
class ControlKind:
    """One control-layer type: its id (the ControlNet unit type it feeds), display name, whether the
    map's colours carry meaning (segment classes, pose limbs, a picture's colours) and so are shown as
    they are instead of in the layer's tint and painted in the chosen colour instead of white, and
    whether painting must keep flat colours."""

    id: str
    name: str
    own_colours: bool = False
    flat: bool = False


def _kind(ident: str, own_colours: bool = False, flat: bool = False) -> ControlKind:
    return ControlKind(ident, PREPROCESSORS[ident].name, own_colours, flat)


CONTROL_KINDS: dict[str, ControlKind] = {kind.id: kind for kind in (
    _kind("scribble"),
    _kind("canny"),
    _kind("lineart"),
    _kind("seg", own_colours=True, flat=True),
    _kind("pose", own_colours=True),
    _kind("tile", own_colours=True),
    _kind("shuffle", own_colours=True),
)}


def control_kind(control_type: str) -> ControlKind:
    """The kind of a control type. A type Atelier has no preprocessor for (e.g. "depth", read from
    another tool's settings) is a line map: shown in the tint, painted white."""
    return CONTROL_KINDS.get(control_type) or ControlKind(control_type, control_type)
