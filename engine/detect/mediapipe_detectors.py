"""Faces, hands and a person with mediapipe's legacy solutions (the models ship inside the
mediapipe 0.10.21 wheel; nothing is downloaded).

- Faces: BlazeFace (Bazarevsky et al. 2019), the full-range model (model_selection=1, faces up
  to about 5 m); its score, box and 6 keypoints (eyes, nose tip, mouth centre, ear tragions).
- Hands: palm detection + 21-landmark model (Zhang et al. 2020, "MediaPipe Hands"); the box is
  the landmarks' extent (joint centres, so a little inside the hand's outline). The legacy
  solution reports no presence score: hands are those whose palm detection reached min_score,
  and a Detection's score is the handedness classifier's confidence (>= 0.5).
- Person: BlazePose (Bazarevsky et al. 2020) with model_complexity=1. The legacy solution tracks
  ONE person: in an image of several it returns at most one, a limit of the model. The box is
  the extent of the landmarks with visibility >= 0.5 (joints, not the silhouette, so the top of
  the head lies above it); the score is the mean visibility of all 33 landmarks (how much of a
  body the model sees); landmarks it does not see are (nan, nan) keypoints.

Each detector builds its mediapipe graph for one detection threshold and rebuilds it when the
threshold changes (graphs take the threshold at construction)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.detect.boxes import Detection

ANALYSIS_SIDE = 1280  # the models resize to 128-256 px internally; this only bounds the copy
MAX_HANDS = 8
VISIBLE = 0.5  # pose landmark visibility from which a joint counts as seen
MISSING = (math.nan, math.nan)


def _clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[float, ...]:
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width),
            min(max(y1, 0.0), height))


def face_detection(box: np.ndarray, score: float, keypoints: np.ndarray, width: int, height: int) -> Detection:
    """A face from BlazeFace's relative box (xmin, ymin, w, h) and (6, 2) relative keypoints."""
    x0, y0 = box[0] * width, box[1] * height
    clipped = _clip_box(x0, y0, x0 + box[2] * width, y0 + box[3] * height, width, height)
    points = tuple((float(x * width), float(y * height)) for x, y in keypoints)
    return Detection(clipped, float(score), "face", points)


def hand_detection(landmarks: np.ndarray, handedness: str, score: float, width: int, height: int) -> Detection:
    """A hand from its (21, 2) relative landmarks and mediapipe's handedness ("Left"/"Right").
    Mediapipe labels hands as seen in a mirrored (selfie) image, so for an ordinary photo its
    "Left" is the person's right hand (its documentation says to swap)."""
    if handedness not in ("Left", "Right"):
        raise ValueError(f"handedness must be 'Left' or 'Right', got {handedness!r}")
    pts = landmarks * np.array([width, height])
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    label = "right hand" if handedness == "Left" else "left hand"
    return Detection(_clip_box(x0, y0, x1, y1, width, height), float(score), label,
                     tuple((float(x), float(y)) for x, y in pts))


def person_detection(landmarks: np.ndarray, width: int, height: int) -> Detection | None:
    """A person from (33, 3) relative pose landmarks (x, y, visibility); None when none is seen."""
    seen = landmarks[:, 2] >= VISIBLE
    if not seen.any():
        return None
    pts = landmarks[:, :2] * np.array([width, height])
    (x0, y0), (x1, y1) = pts[seen].min(axis=0), pts[seen].max(axis=0)
    box = _clip_box(x0, y0, x1, y1, width, height)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None  # every seen joint lies outside the image
    points = tuple((float(x), float(y)) if s else MISSING for (x, y), s in zip(pts, seen))
    return Detection(box, float(landmarks[:, 2].mean()), "person", points)


class _Graph:
    """One mediapipe solution graph, made for a detection threshold and remade when it changes."""

    def __init__(self, make: Callable[[float], Any]) -> None:
        self._make = make
        self._graph: Any = None
        self._threshold: float | None = None

    def process(self, rgb: np.ndarray, min_score: float) -> Any:
        if self._graph is None or self._threshold != min_score:
            self.close()
            self._graph, self._threshold = self._make(min_score), min_score
        return self._graph.process(rgb)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph, self._threshold = None, None


class MediapipeFaces:
    """Faces with their 6 BlazeFace keypoints."""

    name = "mediapipe-face"
    labels = ("face",)
    max_side = ANALYSIS_SIDE

    def __init__(self) -> None:
        import mediapipe as mp  # loads only when the detector is used

        solution = mp.solutions.face_detection
        self.keypoint_names = tuple(k.name.lower() for k in solution.FaceKeyPoint)
        self._graph = _Graph(lambda s: solution.FaceDetection(model_selection=1, min_detection_confidence=s))

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Faces scoring >= min_score in an (H, W, 3) uint8 RGB image."""
        h, w = rgb.shape[:2]
        found = []
        for d in self._graph.process(rgb, min_score).detections or ():
            rel = d.location_data.relative_bounding_box
            points = np.array([(k.x, k.y) for k in d.location_data.relative_keypoints])
            found.append(face_detection(np.array([rel.xmin, rel.ymin, rel.width, rel.height]), d.score[0],
                                        points, w, h))
        return found

    def close(self) -> None:
        self._graph.close()


class MediapipeHands:
    """Hands with their 21 landmarks, labelled "left hand" / "right hand" (the person's own)."""

    name = "mediapipe-hands"
    labels = ("left hand", "right hand")
    max_side = ANALYSIS_SIDE

    def __init__(self) -> None:
        import mediapipe as mp

        solution = mp.solutions.hands
        self.keypoint_names = tuple(k.name.lower() for k in solution.HandLandmark)
        self._graph = _Graph(lambda s: solution.Hands(static_image_mode=True, max_num_hands=MAX_HANDS,
                                                       model_complexity=1, min_detection_confidence=s))

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Hands whose palm detection scores >= min_score in an (H, W, 3) uint8 RGB image."""
        h, w = rgb.shape[:2]
        result = self._graph.process(rgb, min_score)
        found = []
        for marks, handedness in zip(result.multi_hand_landmarks or (), result.multi_handedness or ()):
            best = handedness.classification[0]
            points = np.array([(p.x, p.y) for p in marks.landmark])
            found.append(hand_detection(points, best.label, best.score, w, h))
        return found

    def close(self) -> None:
        self._graph.close()


class MediapipePerson:
    """At most one person (the legacy pose model's limit), with 33 body landmarks."""

    name = "mediapipe-person"
    labels = ("person",)
    max_side = ANALYSIS_SIDE

    def __init__(self) -> None:
        import mediapipe as mp

        solution = mp.solutions.pose
        self.keypoint_names = tuple(k.name.lower() for k in solution.PoseLandmark)
        self._graph = _Graph(lambda s: solution.Pose(static_image_mode=True, model_complexity=1,
                                                     min_detection_confidence=s))

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """The person (if the pose detector finds one at >= min_score) in an (H, W, 3) uint8 image."""
        h, w = rgb.shape[:2]
        pose = self._graph.process(rgb, min_score).pose_landmarks
        if pose is None:
            return []
        person = person_detection(np.array([(p.x, p.y, p.visibility) for p in pose.landmark]), w, h)
        return [person] if person is not None else []

    def close(self) -> None:
        self._graph.close()
