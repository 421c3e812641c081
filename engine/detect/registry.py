"""Every detector behind one small protocol, the registry of named ones, and `detect`: normalise
the image (grey, RGBA, 16-bit...), shrink a huge one for the detector, run it, map the boxes and
keypoints back to the original pixels, close the detector.

Detectors are made on use and closed after: mediapipe graphs, ONNX sessions and torch models
hold memory and threads. Every detector returns detections with score >= min_score, best first
within a label; what the score means is each detector module's docstring."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.detect.errors import DetectorError
from engine.imaging import downscale_for_analysis, to_rgb8
from engine.paths import builtin_models_dir

DEFAULT_MIN_SCORE = 0.25
DEFAULT_DETECTOR = "mediapipe-face"  # what `atelier detect` and the studio use unless told
# The built-in model's folder, engine.pipeline.resolve.BUILTIN_FOLDER (a test keeps them equal):
# importing that module would load diffusers for a 1 MB detector.
BUILTIN_MODEL_FOLDER = "atelier-shapes"
SHAPES_FOLDER = "detector"  # inside the built-in model's folder

if TYPE_CHECKING:  # boxes imports torch, which the command line's help must not wait for
    from engine.detect.boxes import Detection
    from engine.detect.shapes import GridDetector


class Detector(Protocol):
    """Finds objects in (H, W, 3) uint8 RGB images no larger than `max_side` on their longer side."""

    name: str
    labels: tuple[str, ...]
    keypoint_names: tuple[str, ...]  # what each keypoint index is; empty when it gives none
    max_side: int

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DetectorSpec:
    """A named detector: how to make it, and one line for help texts."""

    make: Callable[[], Detector]
    summary: str


class ShapesDetector:
    """The built-in shapes detector (engine.detect.shapes), run at the size it was trained at: the
    shapes world scales with the image, so a larger render is shrunk to that size first."""

    keypoint_names: tuple[str, ...] = ()

    def __init__(self, folder: Path) -> None:
        from engine.detect.shapes import load_detector  # torch loads only for this detector

        if not (folder / "model.safetensors").is_file():
            raise DetectorError(f"{folder}: the built-in shapes detector is not installed "
                                "(train it with `python -m engine.train detector`)")
        self.name = "shapes"
        model = load_detector(folder)
        self.labels = model.config.classes
        self.max_side = model.config.image_size
        self._model: GridDetector | None = model

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Shapes scoring >= min_score in an (H, W, 3) uint8 RGB image."""
        if self._model is None:
            raise DetectorError("shapes: detector is closed")
        return self._model.detections(rgb, min_score)

    def close(self) -> None:
        self._model = None


def _shapes() -> Detector:
    return ShapesDetector(builtin_models_dir() / BUILTIN_MODEL_FOLDER / SHAPES_FOLDER)


def _mediapipe_face() -> Detector:
    from engine.detect.mediapipe_detectors import MediapipeFaces  # mediapipe loads on use

    return MediapipeFaces()


def _mediapipe_hands() -> Detector:
    from engine.detect.mediapipe_detectors import MediapipeHands

    return MediapipeHands()


def _mediapipe_person() -> Detector:
    from engine.detect.mediapipe_detectors import MediapipePerson

    return MediapipePerson()


def _haar(name: str) -> Callable[[], Detector]:
    def make() -> Detector:
        from engine.detect.haar import CASCADES, HaarDetector

        return HaarDetector(name, CASCADES[name])
    return make


DETECTORS: dict[str, DetectorSpec] = {
    "mediapipe-face": DetectorSpec(_mediapipe_face, "faces with 6 keypoints (mediapipe BlazeFace)"),
    "mediapipe-hands": DetectorSpec(_mediapipe_hands, "hands with 21 landmarks, left/right (mediapipe)"),
    "mediapipe-person": DetectorSpec(_mediapipe_person, "one person with 33 landmarks (mediapipe pose)"),
    "haar-face": DetectorSpec(_haar("haar-face"), "frontal faces (OpenCV Haar cascade)"),
    "haar-eyes": DetectorSpec(_haar("haar-eyes"), "eyes (OpenCV Haar cascade)"),
    "haar-body": DetectorSpec(_haar("haar-body"), "full bodies (OpenCV Haar cascade)"),
    "shapes": DetectorSpec(_shapes, "the shapes of Atelier's built-in model (built-in detector)"),
}


def is_onnx_path(detector: str) -> bool:
    """Whether a detector argument names a model file rather than a registered detector."""
    return detector.lower().endswith(".onnx")


def open_detector(detector: str, labels: Sequence[str] | None = None, backend: str | None = None) -> Detector:
    """A registered detector by name, or a YOLOv8 .onnx file with optional class `labels` and
    backend ("onnxruntime", the default, or "opencv")."""
    if is_onnx_path(detector):
        from engine.detect.yolo_onnx import load_onnx_detector

        return load_onnx_detector(Path(detector), labels, backend or "onnxruntime")
    if detector not in DETECTORS:
        raise DetectorError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)} or a .onnx file")
    if labels is not None or backend is not None:
        raise DetectorError(f"class labels and backends apply to .onnx detectors only, not to {detector!r}")
    return DETECTORS[detector].make()


def scale_detection(detection: Detection, scale: float) -> Detection:
    """The same detection with box and keypoints multiplied by `scale` (NaN keypoints stay NaN)."""
    from engine.detect.boxes import Detection

    box = tuple(v * scale for v in detection.box)
    points = tuple((x * scale, y * scale) for x, y in detection.keypoints)
    return Detection(box, detection.score, detection.label, points)  # type: ignore[arg-type]


def run_detector(detector: Detector, image: np.ndarray, min_score: float = DEFAULT_MIN_SCORE) -> list[Detection]:
    """Detections in any image `to_rgb8` reads, in its own pixels: a larger image than the
    detector's `max_side` is shrunk for it and the results scaled back."""
    if not (0.0 <= min_score <= 1.0) or math.isnan(min_score):
        raise ValueError(f"min_score must lie in [0, 1], got {min_score}")
    small = downscale_for_analysis(to_rgb8(image), detector.max_side)
    found = [d for d in detector.detect(small.image, min_score) if d.score >= min_score]
    return found if small.scale == 1.0 else [scale_detection(d, small.scale) for d in found]


def detect(image: np.ndarray, detector: str, min_score: float = DEFAULT_MIN_SCORE,
           labels: Sequence[str] | None = None) -> list[Detection]:
    """Open `detector` (a name in DETECTORS or a .onnx path), run it on `image`, close it."""
    opened = open_detector(detector, labels)
    try:
        return run_detector(opened, image, min_score)
    finally:
        opened.close()
