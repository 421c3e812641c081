"""Aligned face detail (DetailPass.align_faces): a face detection's five landmarks, found inside its
box, turn the face upright on a square crop at the pass's working size; the crop is repainted by
img2img and pasted back through engine.face's soft edge.

An upright face at one scale is what diffusion models draw best: a tilted or small face comes out
as the model's one frontal face, sized to the crop. The crop shows ALIGN_CONTEXT times the ArcFace
framing so the chin, hairline and some surroundings are repainted with the face, and the feathered
band falls on the surroundings, not on the features. Colours are not matched on paste-back: the
model repaints them, and a denoise-0 pass must stay the VAE round trip it is on the other path.
"""

from __future__ import annotations

import math

import numpy as np

from engine.detect.boxes import Detection
from engine.face.align import AlignedFace, align_face
from engine.face.landmarks import FaceNotFoundError, FiveLandmarks, find_faces
from engine.face.paste import paste_back
from engine.pipeline.inpaint import resize

# The aligned crop shows this many times the ArcFace template's framing (which runs from the brows
# to the mouth): at 1.75 the face from hairline to chin fills about the middle 60%, as ADetailer's
# default 32 px padding frames a BlazeFace box at 512 px.
ALIGN_CONTEXT = 1.75
# The landmark search looks this far beyond the detection's box (a fraction of its side each way):
# the face mesh's own detector needs the whole head and some background to find a face.
LANDMARK_MARGIN = 0.5
# paste_back's soft edge, a fraction of the crop's side: inside the context band, off the face.
FEATHER = 0.1


def _search_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels [x0, x1) x [y0, y1) the landmark search reads: the box grown by LANDMARK_MARGIN,
    clipped to the image."""
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * LANDMARK_MARGIN, (y1 - y0) * LANDMARK_MARGIN
    return (max(math.floor(x0 - mx), 0), max(math.floor(y0 - my), 0),
            min(math.ceil(x1 + mx), width), min(math.ceil(y1 + my), height))


def face_landmarks(image: np.ndarray, detection: Detection) -> FiveLandmarks | None:
    """The five landmarks of the face `detection` boxes in an (H, W, 3) uint8 image: engine.face's
    find_faces on the box's surroundings, mapped back to image pixels. Of several faces there, the
    one whose eye midpoint is nearest the box's centre; None when no face has it inside the box."""
    height, width = image.shape[:2]
    left, top, right, bottom = _search_box(detection.box, width, height)
    if right - left < 2 or bottom - top < 2:
        return None
    try:
        faces = find_faces(image[top:bottom, left:right])
    except FaceNotFoundError:
        return None
    x0, y0, x1, y1 = detection.box
    centre = np.array([(x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5])  # in pixel-centre coordinates
    offset = np.array([left, top], dtype=np.float64)
    best, best_distance = None, math.inf
    for face in faces:
        points = face.points + offset
        eyes = points[:2].mean(axis=0)
        distance = float(np.hypot(*(eyes - centre)))
        inside = x0 <= eyes[0] + 0.5 <= x1 and y0 <= eyes[1] + 0.5 <= y1  # the box is in edge coordinates
        if inside and distance < best_distance:
            fx0, fy0, fx1, fy1 = face.box
            best = FiveLandmarks.from_points(points, (fx0 + left, fy0 + top, fx1 + left, fy1 + top), face.source)
            best_distance = distance
    return best


def align_detail_face(image: np.ndarray, face: FiveLandmarks, size: int) -> AlignedFace:
    """The face upright on a `size` x `size` crop: eyes on the ArcFace template, ALIGN_CONTEXT times
    its framing."""
    return align_face(image, face, size, "arcface", context=ALIGN_CONTEXT)


def paste_face(image: np.ndarray, aligned: AlignedFace, repainted: np.ndarray) -> np.ndarray:
    """`repainted` (the aligned crop after img2img, or a preview of it at any size) put back into
    `image` through the crop's soft edge; pixels outside its footprint stay exactly as they were."""
    repainted = resize(repainted, aligned.size, aligned.size)
    return paste_back(image, aligned, repainted, feather=FEATHER, colour_match=False)
