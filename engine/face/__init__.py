"""Face alignment: five landmarks per face (mediapipe's face mesh, dlib or Haar cascades), the
similarity warp onto the ArcFace template or FFHQ's crop, and pasting an edited crop back.

Exports load on first use, so the command line can register `atelier faces` without loading cv2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "ALIGNERS": "engine.face.align",
    "AlignedFace": "engine.face.align",
    "align_face": "engine.face.align",
    "SOURCES": "engine.face.landmarks",
    "FaceNotFoundError": "engine.face.landmarks",
    "FiveLandmarks": "engine.face.landmarks",
    "SourceUnavailableError": "engine.face.landmarks",
    "find_faces": "engine.face.landmarks",
    "paste_back": "engine.face.paste",
    "pasted_alpha": "engine.face.paste",
    "faces_record": "engine.face.export",
    "write_aligned_faces": "engine.face.export",
    "arcface_template": "engine.face.similarity",
    "umeyama": "engine.face.similarity",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.face.align import ALIGNERS, AlignedFace, align_face
    from engine.face.landmarks import SOURCES, FaceNotFoundError, FiveLandmarks, SourceUnavailableError, find_faces
    from engine.face.export import faces_record, write_aligned_faces
    from engine.face.paste import paste_back, pasted_alpha
    from engine.face.similarity import arcface_template, umeyama


__getattr__ = lazy_getattr(__name__, _EXPORTS)
