"""Control-map preprocessors: pure functions image -> ControlNet map with typed, bounded params,
listed in `PREPROCESSORS` under the ControlNet unit types they feed."""

from engine.control.edges import CannyParams, LineartParams, ScribbleParams, canny, lineart, scribble
from engine.control.params import ParamSpec, check_params, param, param_specs
from engine.control.pose import (
    Keypoint,
    PoseDetector,
    PoseKeypoints,
    PoseNotFoundError,
    PoseParams,
    detect_pose,
    draw_pose,
    estimate_pose,
    pose_map,
    redraw_pose,
    with_joint_moved,
)
from engine.control.registry import PREPROCESSORS, Preprocessor
from engine.control.seg import SegParams, seg
from engine.control.shuffle import ShuffleParams, shuffle
from engine.control.tile import TileParams, tile

__all__ = [
    "PREPROCESSORS", "CannyParams", "Keypoint", "LineartParams", "ParamSpec", "PoseDetector", "PoseKeypoints",
    "PoseNotFoundError", "PoseParams", "Preprocessor", "ScribbleParams", "SegParams", "ShuffleParams",
    "TileParams", "canny", "check_params", "detect_pose", "draw_pose", "estimate_pose", "lineart", "param",
    "param_specs", "pose_map", "redraw_pose", "scribble", "seg", "shuffle", "tile", "with_joint_moved",
]
