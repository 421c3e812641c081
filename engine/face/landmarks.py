"""Five face landmarks (eye centres, nose tip, mouth corners) from mediapipe's face mesh, with
dlib's 5-point model and OpenCV's Haar cascades as fallbacks."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.face.similarity import ARCFACE_112, apply_affine, arcface_template, invert_affine, umeyama, warp_to_crop
from engine.imaging import downscale_for_analysis, to_rgb8

Point = tuple[float, float]
Box = tuple[float, float, float, float]


class FaceNotFoundError(ValueError):
    """No face in the image (the sources that were tried found none)."""


class SourceUnavailableError(RuntimeError):
    """A landmark source was asked for whose package or model file is not installed."""


@dataclass(frozen=True)
class FiveLandmarks:
    """One face's five landmarks in image pixels (pixel centres at integer coordinates, as in
    cv2.warpAffine): `left_eye` is the eye on the image's left (the person's right), as in the
    ArcFace template; `box` (x0, y0, x1, y1) bounds the face; `source` names what found it."""

    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point
    box: Box
    source: str

    @property
    def points(self) -> np.ndarray:
        """The landmarks as a (5, 2) array in the ArcFace order."""
        return np.array([self.left_eye, self.right_eye, self.nose, self.mouth_left, self.mouth_right])

    @staticmethod
    def from_points(points: np.ndarray, box: Box, source: str) -> "FiveLandmarks":
        """Build from a (5, 2) array in the ArcFace order."""
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (5, 2) or len(box) != 4:
            raise ValueError(f"expected (5, 2) points and a 4-value box, got {points.shape} and {box!r}")
        p = [(float(x), float(y)) for x, y in points]
        x0, y0, x1, y1 = (float(v) for v in box)
        return FiveLandmarks(p[0], p[1], p[2], p[3], p[4], (x0, y0, x1, y1), source)

    def scaled(self, scale: float) -> "FiveLandmarks":
        """The same face in an image `scale` times larger (pixel centres mapped, not corners)."""
        points = (self.points + 0.5) * scale - 0.5
        x0, y0, x1, y1 = (v * scale for v in self.box)  # box edges lie on pixel edges
        return FiveLandmarks.from_points(points, (x0, y0, x1, y1), self.source)


# A source takes the full-resolution (H, W, 3) uint8 RGB image, the longest side to detect at and
# the most faces to return; it returns the faces it finds (possibly none) in full-resolution
# pixels, and raises SourceUnavailableError when its package or model is missing.
LandmarkSource = Callable[[np.ndarray, int, int], list[FiveLandmarks]]
Detector = Callable[[np.ndarray, int], list[FiveLandmarks]]


def _detect_downscaled(detect: Detector, rgb: np.ndarray, max_side: int, max_faces: int) -> list[FiveLandmarks]:
    """Run `detect` on `rgb` shrunk to `max_side` and map its faces back to full resolution."""
    small = downscale_for_analysis(rgb, max_side)
    faces = detect(small.image, max_faces)
    return faces if small.scale == 1.0 else [face.scaled(small.scale) for face in faces]


# Face mesh indices (mediapipe's 478-point topology with refine_landmarks=True): 468 and 473 are
# the iris centres (image-left, image-right eye), 1 the nose tip, 61 and 291 the mouth corners.
MESH_INDICES = (468, 473, 1, 61, 291)
# The second mesh pass runs on an upright crop with the face on the ArcFace template at this size.
REFINE_SIZE = 512


def _mediapipe_faces(rgb: np.ndarray, max_side: int, max_faces: int) -> list[FiveLandmarks]:
    """Five points per face from mediapipe's face mesh, in two passes: the mesh on the (downscaled)
    photo finds each face, then a second mesh on an upright REFINE_SIZE crop of the full-resolution
    face places the points. On skimage's astronaut the first pass reads the eyes about 0.5 px off
    the mesh's own reading of an upright crop, and 1.5 px from dlib's independent eye centres; after
    the second pass aligned crops read back within 0.7 px of where they were put and dlib agrees to
    within 1 px."""
    faces = _detect_downscaled(_mesh_faces, rgb, max_side, max_faces)
    return [_refine_on_crop(rgb, face) for face in faces]


def _refine_on_crop(rgb: np.ndarray, face: FiveLandmarks) -> FiveLandmarks:
    """`face` with its points read again by the mesh on an upright crop (unchanged if the mesh
    finds no face there)."""
    template = arcface_template(REFINE_SIZE)
    matrix = umeyama(face.points, template)
    crop = warp_to_crop(rgb, matrix, REFINE_SIZE)
    found = _mesh_faces(crop, 2)
    if not found:
        return face
    # The face the crop was made for lies on the template; a second face would lie elsewhere.
    best = min(found, key=lambda f: float(np.abs(f.points - template).sum()))
    points = apply_affine(invert_affine(matrix), best.points)
    return FiveLandmarks.from_points(points, face.box, face.source)


def _mesh_faces(rgb: np.ndarray, max_faces: int) -> list[FiveLandmarks]:
    """One face-mesh pass (static images, iris refinement on)."""
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as exc:
        raise SourceUnavailableError(f"mediapipe is not installed ({exc})") from exc
    h, w = rgb.shape[:2]
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
                            min_detection_confidence=0.5) as mesh:
        result = mesh.process(rgb)
    faces = []
    for face in result.multi_face_landmarks or []:
        # Normalised coordinates run over the image's extent, edge 0 to edge 1 (checked by flipping
        # a photo: x and the mirrored x' sum to 1, not 1 - 1/w).
        all_points = np.array([(p.x * w - 0.5, p.y * h - 0.5) for p in face.landmark])  # (478, 2)
        x0, y0 = all_points.min(axis=0) + 0.5
        x1, y1 = all_points.max(axis=0) + 0.5
        box = _clip_box((x0, y0, x1, y1), rgb.shape)
        faces.append(FiveLandmarks.from_points(all_points[list(MESH_INDICES)], box, "mediapipe"))
    return faces


# The HOG detector's SVM margin below which a hit is dropped: 0 is its trained boundary, and weak
# hits just above it are textures (the mission badge on skimage's astronaut scores 0.12).
DLIB_MIN_SCORE = 0.5


def _dlib_model_path() -> Path:
    # find_spec does not run the package's __init__, which needs pkg_resources.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailableError("dlib's 5-point model needs the face-recognition-models package "
                                     "(install atelier[dlib])")
    path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_5_face_landmarks.dat"
    if not path.is_file():
        raise SourceUnavailableError(f"dlib's 5-point model is missing: {path}")
    return path


def _dlib_faces(rgb: np.ndarray, max_side: int, max_faces: int) -> list[FiveLandmarks]:
    """Faces from dlib (see _dlib_detect), detected downscaled."""
    return _detect_downscaled(_dlib_detect, rgb, max_side, max_faces)


def _dlib_detect(rgb: np.ndarray, max_faces: int) -> list[FiveLandmarks]:
    """dlib's HOG face detector and 5-point shape predictor. Its points are the two corners of
    each eye (0, 1: image-right eye; 2, 3: image-left eye) and the base of the nose (4); the eye
    centre is the mean of its corners. dlib has no mouth, and its nose point lies below the tip, so
    the nose tip and mouth corners are the ArcFace template's (a mean face) placed by the eyes,
    then moved along the eye line as far as dlib's nose base sits from the template's nose: that
    offset is how far the face is turned."""
    try:
        import dlib
    except ImportError as exc:
        raise SourceUnavailableError(f"dlib is not installed (install atelier[dlib]) ({exc})") from exc
    predictor = dlib.shape_predictor(str(_dlib_model_path()))
    rects, scores, _ = dlib.get_frontal_face_detector().run(rgb, 1, 0.0)
    found = sorted(zip(scores, rects), key=lambda sr: -sr[0])
    faces = []
    for score, rect in found[:max_faces]:
        if score < DLIB_MIN_SCORE:
            continue
        shape = predictor(rgb, rect)
        parts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64)
        eyes = np.array([parts[2:4].mean(axis=0), parts[0:2].mean(axis=0)])
        estimated = _template_from_eyes(eyes)
        along = (eyes[1] - eyes[0]) / np.linalg.norm(eyes[1] - eyes[0])
        turn = float((parts[4] - estimated[2]) @ along) * along
        points = np.vstack([eyes, estimated[2:] + turn])
        box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
        faces.append(FiveLandmarks.from_points(points, _clip_box(box, rgb.shape), "dlib"))
    return faces


# Where the eye centres sit in a haarcascade_frontalface_default box, as fractions of its width
# and height (measured with mediapipe's iris centres on skimage's astronaut and rounded): a rough
# guess used only for an eye the eye cascade does not find.
HAAR_EYES_IN_BOX = ((0.27, 0.38), (0.73, 0.38))


def _haar_faces(rgb: np.ndarray, max_side: int, max_faces: int) -> list[FiveLandmarks]:
    """Faces from the Haar cascades (see _haar_detect), detected downscaled."""
    return _detect_downscaled(_haar_detect, rgb, max_side, max_faces)


def _haar_detect(rgb: np.ndarray, max_faces: int) -> list[FiveLandmarks]:
    """OpenCV's Haar cascades: frontal faces, then each eye from the eye cascade in that half of
    the face's upper part (else from the box proportions above). The nose tip and mouth corners are
    the ArcFace template placed by the similarity that maps its eyes onto these eyes."""
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    face_cascade = _cascade("haarcascade_frontalface_default.xml")
    eye_cascade = _cascade("haarcascade_eye.xml")
    min_side = max(24, min(rgb.shape[:2]) // 40)
    boxes = face_cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    boxes = sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3])
    faces = []
    for x, y, w, h in boxes[:max_faces]:
        eyes = np.array([_haar_eye(grey, eye_cascade, (x, y, w, h), side) for side in (0, 1)])
        points = np.vstack([eyes, _template_from_eyes(eyes)[2:]])
        faces.append(FiveLandmarks.from_points(points, (x, y, x + w, y + h), "haar"))
    return faces


def _template_from_eyes(eyes: np.ndarray) -> np.ndarray:
    """The ArcFace template's five points (5, 2) placed by the similarity that puts its eyes on
    `eyes` (2, 2): a mean face's nose and mouth for sources that do not find them."""
    return apply_affine(umeyama(ARCFACE_112[:2], eyes), ARCFACE_112)


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise SourceUnavailableError(f"OpenCV's Haar cascade is missing or unreadable: {path}")
    return cascade


def _haar_eye(grey: np.ndarray, cascade: cv2.CascadeClassifier, face: tuple[int, int, int, int],
              side: int) -> tuple[float, float]:
    """The centre of eye `side` (0: image-left) of a face box, from the eye cascade's largest hit
    in that half of the face's upper part, else from HAAR_EYES_IN_BOX."""
    x, y, w, h = face
    fx, fy = HAAR_EYES_IN_BOX[side]
    guess = (x + fx * w - 0.5, y + fy * h - 0.5)
    # The eye band: from 15% to 60% of the face height, in this eye's half of the box.
    x0, x1 = x + side * w // 2, x + (side + 1) * w // 2
    y0, y1 = y + int(0.15 * h), y + int(0.6 * h)
    band = grey[y0:y1, x0:x1]
    smallest = max(6, w // 8)
    hits = cascade.detectMultiScale(band, scaleFactor=1.1, minNeighbors=3, minSize=(smallest, smallest),
                                    maxSize=(w // 2, w // 2))
    if len(hits) == 0:
        return guess
    ex, ey, ew, eh = max(hits, key=lambda b: b[2] * b[3])
    return (x0 + ex + (ew - 1) / 2, y0 + ey + (eh - 1) / 2)


def _clip_box(box: Box, shape: tuple[int, ...]) -> Box:
    h, w = shape[:2]
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3]))


# The sources in the order "auto" tries them.
SOURCES: dict[str, LandmarkSource] = {
    "mediapipe": _mediapipe_faces,
    "dlib": _dlib_faces,
    "haar": _haar_faces,
}


def find_faces(rgb: np.ndarray, *, source: str = "auto", max_side: int = 1024,
               max_faces: int = 16) -> list[FiveLandmarks]:
    """Every face's five landmarks in `rgb` (grey, RGB, RGBA, 8/16-bit or float [0, 1]), largest
    face first. "auto" tries mediapipe, dlib, then Haar and keeps the first that finds a face; a
    source name forces that one. Images longer than `max_side` are detected downscaled and the
    points mapped back. Raises FaceNotFoundError when no face is found."""
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"unknown landmark source {source!r}; choose auto or one of {', '.join(SOURCES)}")
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    if max_side < 64:
        raise ValueError(f"max_side must be at least 64 px (faces vanish below that), got {max_side}")
    rgb = to_rgb8(rgb)
    names = list(SOURCES) if source == "auto" else [source]
    tried = []
    for name in names:
        try:
            faces = SOURCES[name](rgb, max_side, max_faces)
        except SourceUnavailableError:
            if source != "auto":
                raise
            continue  # an optional source that is not installed: try the next
        tried.append(name)
        if faces:
            return sorted(faces, key=_box_area, reverse=True)
    if not tried:
        raise SourceUnavailableError("no landmark source is installed (mediapipe, dlib or OpenCV's cascades)")
    h, w = rgb.shape[:2]
    raise FaceNotFoundError(f"no face found in the {w}x{h} image (tried {', '.join(tried)})")


def _box_area(face: FiveLandmarks) -> float:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * (y1 - y0)
