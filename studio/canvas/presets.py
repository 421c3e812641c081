"""Canvas size presets matching the resolutions each model family was trained at."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_SDXL_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("Square", 1024, 1024),
    ("Portrait 7:9", 896, 1152),
    ("Landscape 9:7", 1152, 896),
    ("Landscape 3:2", 1216, 832),
    ("Portrait 2:3", 832, 1216),
    ("Landscape 16:9", 1344, 768),
    ("Portrait 9:16", 768, 1344),
)

_PRESETS: Mapping[str, tuple[tuple[str, int, int], ...]] = MappingProxyType({
    "builtin": (("Square", 128, 128),),
    "sd1": (("Square", 512, 512), ("Portrait 2:3", 512, 768), ("Landscape 3:2", 768, 512)),
    "sd2": (("Square", 768, 768), ("Portrait 2:3", 768, 1152), ("Landscape 3:2", 1152, 768)),
    # SD3 and Flux train on the same ~1 megapixel buckets as SDXL.
    "sdxl": _SDXL_BUCKETS,
    "sd3": _SDXL_BUCKETS,
    "flux": _SDXL_BUCKETS,
})

FAMILIES: tuple[str, ...] = tuple(_PRESETS)


def size_presets(family: str) -> list[tuple[str, int, int]]:
    """The (label, width, height) canvas sizes for a model family ("builtin", "sd1", "sd2", "sdxl",
    "sd3", "flux"); ValueError for an unknown family."""
    try:
        presets = _PRESETS[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}") from None
    return [(f"{label} {w}\u00d7{h}", w, h) for label, w, h in presets]
