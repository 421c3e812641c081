"""Viola-Jones Haar cascades (Viola & Jones 2001; Lienhart & Maydt 2002) as shipped with OpenCV:
frontal faces, eyes, full bodies.

Scores. A cascade only says pass or fail; `detectMultiScale3(outputRejectLevels=True)` also
gives each grouped detection's level weight: the largest boosted sum F(x) of its last stage over
the windows grouped into it. A boosted additive model estimates half the log-odds,
F(x) ~ 1/2 log(p / (1 - p)) (Friedman, Hastie & Tibshirani 2000, "Additive logistic regression"),
so the score is p = 1 / (1 + exp(-2 F)). It ranks detections of one cascade; it is not
calibrated (the last stage was trained on the hard negatives that passed the earlier ones) and
is not comparable across cascades."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.detect.boxes import Detection
from engine.detect.errors import DetectorError

ANALYSIS_SIDE = 1280  # cascades scan every scale: their cost grows with the pixel count
SCALE_FACTOR = 1.1  # OpenCV's default step between scanned window sizes
MIN_NEIGHBORS = 3  # OpenCV's default: overlapping windows a detection needs


@dataclass(frozen=True)
class Cascade:
    """One of OpenCV's cascade files (in cv2.data.haarcascades) and the label it detects."""

    file: str
    label: str


CASCADES: dict[str, Cascade] = {
    "haar-face": Cascade("haarcascade_frontalface_default.xml", "face"),
    "haar-eyes": Cascade("haarcascade_eye.xml", "eye"),
    "haar-body": Cascade("haarcascade_fullbody.xml", "body"),
}


def level_weight_score(weights: np.ndarray) -> np.ndarray:
    """Scores in (0, 1) from the last stage's boosted sums: 1 / (1 + exp(-2 F))."""
    return 1.0 / (1.0 + np.exp(-2.0 * np.asarray(weights, dtype=np.float64)))


class HaarDetector:
    """A Haar cascade run on the histogram-equalised grey image (as OpenCV's face sample does:
    the cascades were trained on normalised windows and equalising drops dim false hits)."""

    max_side = ANALYSIS_SIDE
    keypoint_names: tuple[str, ...] = ()

    def __init__(self, name: str, cascade: Cascade) -> None:
        path = Path(cv2.data.haarcascades) / cascade.file
        classifier = cv2.CascadeClassifier(str(path))
        if classifier.empty():
            raise DetectorError(f"{path}: OpenCV cannot read this cascade file")
        self.name = name
        self.labels = (cascade.label,)
        self._classifier: cv2.CascadeClassifier | None = classifier

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Detections scoring >= min_score in an (H, W, 3) uint8 RGB image."""
        if self._classifier is None:
            raise DetectorError(f"{self.name}: detector is closed")
        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self._classifier.detectMultiScale3(
            grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, outputRejectLevels=True)
        if len(boxes) == 0:
            return []
        scores = level_weight_score(np.asarray(weights).ravel())
        order = np.argsort(-scores, kind="stable")
        return [Detection((float(x), float(y), float(x + w), float(y + h)), float(scores[i]), self.labels[0])
                for i in order if scores[i] >= min_score for x, y, w, h in [boxes[i]]]

    def close(self) -> None:
        self._classifier = None
