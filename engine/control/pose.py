"""Pose control maps: MediaPipe body, hand and face landmarks mapped onto OpenPose's keypoint
layouts (COCO-18 body, 21-point hands, 70-point face), drawn in OpenPose's colours as the
openpose ControlNets read them, and editable one joint at a time.

Coordinates are in pixels of the image the keypoints were found in. MediaPipe's legacy Pose
finds at most one person per image, so `detect_pose` returns zero or one `PoseKeypoints`; the
hands and the face found nearest that body are attached to it.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from engine.control.params import check_params, param
from engine.imaging import downscale_for_analysis, to_rgb8
from engine.settings import codec

BODY_POINTS: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # OpenPose COCO-18 order; left/right are the person's own sides
HAND_POINTS = 21  # OpenPose and MediaPipe share this layout: wrist, then 4 joints per finger thumb to pinky
FACE_POINTS = 70  # OpenPose face: the 68 iBUG/dlib points, then the right and left pupils
PART_SIZES: dict[str, int] = {"body": len(BODY_POINTS), "left_hand": HAND_POINTS, "right_hand": HAND_POINTS,
                              "face": FACE_POINTS}

# OpenPose body index -> MediaPipe Pose landmark index. The neck (1) has no MediaPipe landmark: it is
# the shoulders' midpoint, as OpenPose's neck sits between them.
MEDIAPIPE_BODY: dict[int, int] = {
    0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
    14: 5, 15: 2, 16: 8, 17: 7,
}
_MP_LEFT_WRIST, _MP_RIGHT_WRIST = 15, 16

# OpenPose face index -> MediaPipe Face Mesh vertex, the commonly used 68-point correspondence (as in
# LatentSync 1.5): jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35,
# right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67; then the refined mesh's iris
# centres as the pupils 68 (right, vertex 468) and 69 (left, vertex 473). The mesh has no vertex exactly
# on every dlib contour point, so jaw and brow points are the nearest mesh vertices, not exact matches.
MEDIAPIPE_FACE: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107,
    336, 296, 334, 293, 301,
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
    468, 473,
)

# OpenPose's body limbs (pairs of BODY_POINTS indices) and its 18 colours (RGB); limb i has colour i.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
HAND_BONES: tuple[tuple[int, int], ...] = tuple(  # per finger: wrist -> base, then along the finger
    (0 if j == 0 else 4 * finger + j, 4 * finger + j + 1) for finger in range(5) for j in range(4)
)
LIMB_SHADE = 0.6  # limbs are drawn at 60 % of their colour, joints at full colour
STICK_WIDTH = 4  # half-width of a limb ellipse (px)
JOINT_RADIUS, HAND_JOINT_RADIUS, FACE_RADIUS = 4, 4, 3
HAND_LINE_WIDTH = 2
HAND_JOINT_COLOR = (0, 0, 255)
FACE_COLOR = (255, 255, 255)


class PoseNotFoundError(ValueError):
    """No person was found in the image (the pose preprocessor raises it rather than return a blank map)."""


@dataclass(frozen=True)
class Keypoint:
    """One point in pixels, with the detector's visibility in [0, 1]."""

    x: float
    y: float
    visibility: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.x) and math.isfinite(self.y)):
            raise ValueError(f"keypoint coordinates must be finite, got ({self.x}, {self.y})")
        if not 0.0 <= self.visibility <= 1.0:
            raise ValueError(f"visibility must be within [0, 1], got {self.visibility}")


Points = tuple[Keypoint | None, ...]


@dataclass(frozen=True)
class PoseKeypoints:
    """One person: 18 body points (BODY_POINTS order), 21-point hands and the 70-point face; a
    missing point is None, a missing hand or face is None."""

    body: Points
    left_hand: Points | None = None
    right_hand: Points | None = None
    face: Points | None = None

    def __post_init__(self) -> None:
        for name, size in PART_SIZES.items():
            points = getattr(self, name)
            if points is not None and len(points) != size:
                raise ValueError(f"{name} needs {size} points, got {len(points)}")

    def part(self, name: str) -> Points | None:
        """The points of one part ("body", "left_hand", "right_hand" or "face")."""
        if name not in PART_SIZES:
            raise ValueError(f"unknown pose part {name!r}; valid: {', '.join(PART_SIZES)}")
        return getattr(self, name)

    def scaled(self, sx: float, sy: float) -> PoseKeypoints:
        """The same pose on an image resized by (sx, sy): every point's x times sx and y times sy."""
        def part(points: Points | None) -> Points | None:
            if points is None:
                return None
            return tuple(None if p is None else Keypoint(p.x * sx, p.y * sy, p.visibility) for p in points)
        return PoseKeypoints(**{name: part(getattr(self, name)) for name in PART_SIZES})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: each part a list of {"x", "y", "visibility"} objects or nulls; a missing part is null."""
        return codec.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> PoseKeypoints:
        """Keypoints from their JSON form; SettingsError names the wrong field below `path` (e.g. "body[3].x")."""
        return codec.from_dict(cls, data, path)


@dataclass(frozen=True)
class PoseParams:
    """Detection settings: confidence, which parts to find, and the detection resolution."""

    min_confidence: float = param(0.5, ge=0.05, le=1.0, step=0.05, label="Min confidence",
                                  doc="detector confidence needed to report a person, hand or face")
    min_visibility: float = param(0.5, ge=0.0, le=1.0, step=0.05, label="Min visibility",
                                  doc="body points less visible than this are left out")
    hands: bool = param(True, label="Hands")
    face: bool = param(True, label="Face")
    max_side: int = param(1024, ge=256, le=4096, step=64, label="Detection size",
                          doc="larger images are shrunk to this longer side for detection")

    def __post_init__(self) -> None:
        check_params(self)


class PoseDetector:
    """MediaPipe's Pose (model_complexity=1), Hands and Face Mesh, opened once for several images;
    use as a context manager (the graphs hold native resources until closed)."""

    def __init__(self, params: PoseParams = PoseParams()) -> None:
        import mediapipe as mp  # imported here: loading it costs about a second, and most callers never need it

        confidence = params.min_confidence
        self.params = params
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                            min_detection_confidence=confidence)
        self._hands = (mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=4, model_complexity=1,
                                                min_detection_confidence=confidence) if params.hands else None)
        self._face = (mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=True,
                                                      min_detection_confidence=confidence) if params.face else None)

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        for solution in (self._pose, self._hands, self._face):
            if solution is not None:
                solution.close()

    def detect(self, image: np.ndarray) -> list[PoseKeypoints]:
        """The person in `image` (any layout `to_rgb8` takes) with hands and face, or [] if none."""
        rgb = to_rgb8(image)
        small = downscale_for_analysis(rgb, self.params.max_side)
        h, w = small.image.shape[:2]
        # MediaPipe answers in [0, 1] of the image it saw; small pixels * scale are original pixels
        size = (w * small.scale, h * small.scale)
        found = self._pose.process(small.image).pose_landmarks
        if found is None:
            return []
        landmarks = _pixels(found.landmark, size)  # (33, 3): x, y, visibility
        body = _body_points(landmarks, rgb.shape[1], rgb.shape[0], self.params.min_visibility)
        hands = self._hands.process(small.image).multi_hand_landmarks if self._hands is not None else None
        faces = self._face.process(small.image).multi_face_landmarks if self._face is not None else None
        left, right = _attach_hands([_pixels(h.landmark, size) for h in hands or ()], landmarks)
        face = _attach_face([_pixels(f.landmark, size) for f in faces or ()], landmarks)
        return [PoseKeypoints(body, left, right, face)]


def _pixels(landmarks: Any, size: tuple[float, float]) -> np.ndarray:
    """(N, 3) x, y in pixels and visibility of a MediaPipe landmark list."""
    return np.array([(p.x * size[0], p.y * size[1], p.visibility) for p in landmarks], np.float64)


def _body_points(landmarks: np.ndarray, width: int, height: int, min_visibility: float) -> Points:
    """The 18 OpenPose body points from MediaPipe's 33; unseen or off-image points are None."""

    def point(x: float, y: float, visibility: float) -> Keypoint | None:
        if not (0.0 <= x < width and 0.0 <= y < height and visibility >= min_visibility):
            return None
        return Keypoint(float(x), float(y), float(np.clip(visibility, 0.0, 1.0)))

    points = [point(*landmarks[MEDIAPIPE_BODY[i]]) if i in MEDIAPIPE_BODY else None for i in range(len(BODY_POINTS))]
    right, left = points[2], points[5]
    if right is not None and left is not None:
        points[1] = Keypoint((right.x + left.x) / 2, (right.y + left.y) / 2, min(right.visibility, left.visibility))
    return tuple(points)


def _as_points(landmarks: np.ndarray) -> Points:
    return tuple(Keypoint(float(x), float(y)) for x, y in landmarks[:, :2])


def _attach_hands(hands: list[np.ndarray], body: np.ndarray) -> tuple[Points | None, Points | None]:
    """Give each body wrist the hand whose wrist is nearest, if it lies within that hand's own size
    (MediaPipe's handedness labels assume a mirrored selfie, so the body decides left and right)."""
    wrists = {"left": body[_MP_LEFT_WRIST, :2], "right": body[_MP_RIGHT_WRIST, :2]}
    candidates = []
    for i, hand in enumerate(hands):
        extent = float(np.linalg.norm(hand[:, :2].max(axis=0) - hand[:, :2].min(axis=0)))
        for side, wrist in wrists.items():
            distance = float(np.linalg.norm(hand[0, :2] - wrist))
            if distance <= extent:
                candidates.append((distance, side, i))
    chosen: dict[str, Points] = {}
    used: set[int] = set()
    for _distance, side, i in sorted(candidates):
        if side not in chosen and i not in used:
            chosen[side] = _as_points(hands[i])
            used.add(i)
    return chosen.get("left"), chosen.get("right")


def _attach_face(faces: list[np.ndarray], body: np.ndarray) -> Points | None:
    """The 70 OpenPose face points of the mesh whose outline holds the body's nose, nearest first."""
    nose = body[0, :2]
    best: tuple[float, np.ndarray] | None = None
    for mesh in faces:
        low, high = mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)
        if (low <= nose).all() and (nose <= high).all():
            distance = float(np.linalg.norm(mesh[1, :2] - nose))  # vertex 1: the nose tip
            if best is None or distance < best[0]:
                best = (distance, mesh)
    return _as_points(best[1][list(MEDIAPIPE_FACE)]) if best is not None else None


def detect_pose(image: np.ndarray, params: PoseParams = PoseParams()) -> list[PoseKeypoints]:
    """Find the person in an image (opens and closes a PoseDetector); [] when there is none."""
    with PoseDetector(params) as detector:
        return detector.detect(image)


def with_joint_moved(people: Sequence[PoseKeypoints], person: int, part: str, index: int,
                     xy: tuple[float, float]) -> tuple[PoseKeypoints, ...]:
    """A copy of `people` with one existing point moved to `xy` (pixels), e.g. after a drag."""
    if not 0 <= person < len(people):
        raise IndexError(f"person {person} out of range for {len(people)} people")
    points = people[person].part(part)
    if points is None:
        raise ValueError(f"person {person} has no {part.replace('_', ' ')}")
    if not 0 <= index < len(points):
        raise IndexError(f"{part} point {index} out of range 0..{len(points) - 1}")
    old = points[index]
    if old is None:
        raise ValueError(f"{part} point {index} was not found, so it cannot be moved")
    moved = dataclasses.replace(old, x=float(xy[0]), y=float(xy[1]))
    changed = dataclasses.replace(people[person], **{part: points[:index] + (moved,) + points[index + 1:]})
    return (*people[:person], changed, *people[person + 1:])


def redraw_pose(canvas: np.ndarray, old: Sequence[PoseKeypoints], new: Sequence[PoseKeypoints]) -> np.ndarray:
    """`canvas`, an (H, W, 3) uint8 pose map that may have been painted on, with the skeleton of `old`
    replaced by that of `new`. Only pixels whose drawing changes are touched: there the new skeleton is
    drawn, and an old skeleton pixel that still has its drawn colour turns black. Paint elsewhere, paint
    over the old limbs and paint or erasure on the parts that did not move are all kept."""
    if canvas.dtype != np.uint8 or canvas.ndim != 3 or canvas.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 pose map, got {canvas.shape} {canvas.dtype}")
    height, width = canvas.shape[:2]
    before, after = draw_pose(old, width, height), draw_pose(new, width, height)  # (H, W, 3) each
    changed = (before != after).any(axis=2)  # (H, W)
    drawn = changed & after.any(axis=2)
    left_as_drawn = changed & ~drawn & (canvas == before).all(axis=2)
    out = canvas.copy()
    out[drawn] = after[drawn]
    out[left_as_drawn] = 0
    return out


def estimate_pose(image: np.ndarray, params: PoseParams = PoseParams()) -> tuple[PoseKeypoints, ...]:
    """The people in an image; raises PoseNotFoundError (with advice the GUI can show) if there are none."""
    people = detect_pose(image, params)
    if not people:
        raise PoseNotFoundError("No person found in the image: the pose map would be empty. Try a lower "
                                "minimum confidence, or a picture where the person is larger and unobstructed.")
    return tuple(people)


def pose_map(image: np.ndarray, params: PoseParams = PoseParams()) -> np.ndarray:
    """The pose preprocessor: detect, then draw at the image's size; raises PoseNotFoundError if
    nobody is found (draw_pose([], w, h) is the empty map, for callers that want it)."""
    rgb = to_rgb8(image)
    return draw_pose(estimate_pose(rgb, params), rgb.shape[1], rgb.shape[0])


def draw_pose(people: Sequence[PoseKeypoints], width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 OpenPose map drawn as controlnet_aux draws it (Cao et al. 2017 colours):
    body limbs as filled ellipses at 60 % colour, joints as full-colour discs, hand bones in HSV
    hues with blue joints, face points white; bodies first, then hands, then faces."""
    if width < 1 or height < 1:
        raise ValueError(f"map size must be positive, got {width}x{height}")
    canvas = np.zeros((height, width, 3), np.uint8)  # (H, W, 3)
    for person in people:
        _draw_body(canvas, person.body)
    for person in people:
        for hand in (person.left_hand, person.right_hand):
            if hand is not None:
                _draw_hand(canvas, hand)
    for person in people:
        for point in person.face or ():
            if point is not None:
                cv2.circle(canvas, (int(point.x), int(point.y)), FACE_RADIUS, FACE_COLOR, thickness=-1)
    return canvas


def _draw_body(canvas: np.ndarray, body: Points) -> None:
    for (a, b), color in zip(LIMBS, COLORS):
        p, q = body[a], body[b]
        if p is None or q is None:
            continue
        length = math.hypot(p.x - q.x, p.y - q.y)
        angle = math.degrees(math.atan2(p.y - q.y, p.x - q.x))
        center = (int((p.x + q.x) / 2), int((p.y + q.y) / 2))
        polygon = cv2.ellipse2Poly(center, (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(c * LIMB_SHADE) for c in color])
    for point, color in zip(body, COLORS):
        if point is not None:
            cv2.circle(canvas, (int(point.x), int(point.y)), JOINT_RADIUS, color, thickness=-1)


def hand_bone_color(bone: int) -> tuple[int, int, int]:
    """The RGB colour of hand bone `bone` (0-19): hue bone / 20 at full saturation and value."""
    r, g, b = colorsys.hsv_to_rgb(bone / len(HAND_BONES), 1.0, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def _draw_hand(canvas: np.ndarray, hand: Points) -> None:
    for bone, (a, b) in enumerate(HAND_BONES):
        p, q = hand[a], hand[b]
        if p is not None and q is not None:
            cv2.line(canvas, (int(p.x), int(p.y)), (int(q.x), int(q.y)), hand_bone_color(bone),
                     thickness=HAND_LINE_WIDTH)
    for point in hand:
        if point is not None:
            cv2.circle(canvas, (int(point.x), int(point.y)), HAND_JOINT_RADIUS, HAND_JOINT_COLOR, thickness=-1)
