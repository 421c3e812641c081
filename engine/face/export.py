"""Writing faces out: the JSON record of the faces found in an image, and aligned crops with their
landmarks (face_000.png ... and faces.json), shared by `atelier faces --align` and the studio's
Align faces tool."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # cv2 loads with them; the command line's help must not wait for it
    from engine.face.align import AlignedFace
    from engine.face.landmarks import FiveLandmarks

LANDMARK_ORDER = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
RECORD_NAME = "faces.json"


def rounded(values: Any) -> Any:
    """Nested floats rounded to 1/1000 px for a readable JSON file."""
    if isinstance(values, (list, tuple)):
        return [rounded(v) for v in values]
    return round(float(values), 3)


def faces_record(image: str, width: int, height: int, faces: Sequence[FiveLandmarks]) -> dict[str, Any]:
    """The faces found in an image named `image` of `width` x `height` px, as JSON-ready data."""
    return {"image": image, "width": width, "height": height, "landmark_order": list(LANDMARK_ORDER),
            "faces": [{"source": face.source, "box": rounded(face.box), "landmarks": rounded(face.points.tolist())}
                      for face in faces]}


def write_aligned_faces(out: Path, image: str, aligned: Sequence[AlignedFace]) -> list[Path]:
    """Write each aligned face as out/face_000.png ... and their landmarks and matrices as
    out/faces.json (the folder is made if missing); returns the crops' paths. `image` names the
    picture they came from in the record; every face must come from it with one method and size."""
    from PIL import Image

    if not aligned:
        raise ValueError("no aligned faces to write")
    first = aligned[0]
    if any((a.method, a.size, a.image_shape) != (first.method, first.size, first.image_shape) for a in aligned):
        raise ValueError("the faces must come from one image, aligned by one method at one size")
    height, width = first.image_shape
    record = faces_record(image, width, height, ())
    record.update(method=first.method, size=first.size)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, face in enumerate(aligned):
        name = f"face_{i:03d}.png"
        Image.fromarray(face.crop).save(out / name)
        record["faces"].append({
            "file": name, "source": face.face.source, "box": rounded(face.face.box),
            "landmarks": rounded(face.face.points.tolist()), "crop_landmarks": rounded(face.landmarks.tolist()),
            # Maps original pixels (x, y, 1) to crop pixels; pixel centres at integer coordinates.
            "matrix": face.matrix.tolist(),
        })
        paths.append(out / name)
    (out / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return paths
