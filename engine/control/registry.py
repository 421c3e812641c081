"""The registry of control-map preprocessors the GUI lists; each id is the ControlNet unit type
(`ControlUnit.type`) its map feeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.control.edges import CannyParams, LineartParams, ScribbleParams, canny, lineart, scribble
from engine.control.params import ParamSpec, param_specs
from engine.control.pose import PoseParams, pose_map
from engine.control.seg import SegParams, seg
from engine.control.shuffle import ShuffleParams, shuffle
from engine.control.tile import TileParams, tile


@dataclass(frozen=True)
class Preprocessor:
    """One preprocessor: id, display name, its frozen params class (defaults and bounds) and the
    pure function (image, params) -> (H, W, 3) uint8 map of the image's size. `realtime` ones use
    OpenCV only and are held to < 100 ms at 512 px (benchmarks/control.py)."""

    id: str
    name: str
    params: type
    fn: Callable[[np.ndarray, Any], np.ndarray]
    realtime: bool = True

    def specs(self) -> tuple[ParamSpec, ...]:
        """The parameters as a GUI shows them."""
        return param_specs(self.params)

    def make_params(self, **values: Any) -> Any:
        """Params from field values (the rest default); raises SettingsError naming a bad field."""
        return self.params(**values)

    def __call__(self, image: np.ndarray, params: Any = None) -> np.ndarray:
        """Run on any image `engine.imaging.to_rgb8` takes, with these params or the defaults."""
        params = self.params() if params is None else params
        if not isinstance(params, self.params):
            raise TypeError(f"{self.id} takes {self.params.__name__}, got {type(params).__name__}")
        return self.fn(image, params)


PREPROCESSORS: dict[str, Preprocessor] = {p.id: p for p in (
    Preprocessor("canny", "Canny edges", CannyParams, canny),
    Preprocessor("scribble", "Scribble", ScribbleParams, scribble),
    Preprocessor("lineart", "Line art", LineartParams, lineart),
    Preprocessor("seg", "Segmentation", SegParams, seg),
    Preprocessor("pose", "Pose", PoseParams, pose_map, realtime=False),
    Preprocessor("tile", "Tile", TileParams, tile),
    Preprocessor("shuffle", "Shuffle", ShuffleParams, shuffle),
)}
