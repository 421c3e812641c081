"""`atelier faces IMAGE`: print the faces found as JSON, or with --align write aligned crops and
their landmarks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.native_logs import native_stderr_silenced

LANDMARK_ORDER = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Kept literal (not imported from the face modules) so `atelier --help` loads no cv2 or mediapipe;
# test_cli checks them against the registries.
METHODS = ("arcface", "insightface", "ffhq")
SOURCES = ("auto", "mediapipe", "dlib", "haar")


def _rounded(values: Any) -> Any:
    """Nested floats rounded to 1/1000 px for a readable JSON file."""
    if isinstance(values, (list, tuple)):
        return [_rounded(v) for v in values]
    return round(float(values), 3)


def _faces(args: argparse.Namespace) -> int:
    """Find the faces in an image; print them as JSON, or write aligned crops and faces.json."""
    from PIL import Image

    from engine.cli import CommandError
    from engine.face.align import align_face
    from engine.face.landmarks import FaceNotFoundError, SourceUnavailableError, find_faces
    from engine.pipeline.inputs import read_rgb

    if args.align and args.output is None:
        raise CommandError("--align writes crops: give the folder with -o DIR")
    if not args.align and args.output is not None:
        raise CommandError("-o DIR is where --align writes crops; without --align the faces go to stdout")
    path = Path(args.image)
    rgb = read_rgb(path)
    try:
        with native_stderr_silenced():
            faces = find_faces(rgb, source=args.source)
    except (FaceNotFoundError, SourceUnavailableError) as exc:
        raise CommandError(f"{path}: {exc}") from exc
    record: dict[str, Any] = {"image": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
                              "landmark_order": list(LANDMARK_ORDER), "faces": []}
    if not args.align:
        for face in faces:
            record["faces"].append({"source": face.source, "box": _rounded(face.box),
                                    "landmarks": _rounded(face.points.tolist())})
        print(json.dumps(record, indent=2))
        return 0
    aligned = [align_face(rgb, face, args.size, args.method) for face in faces]
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    record.update(method=args.method, size=args.size)
    for i, face in enumerate(aligned):
        name = f"face_{i:03d}.png"
        Image.fromarray(face.crop).save(out / name)
        record["faces"].append({
            "file": name, "source": face.face.source, "box": _rounded(face.face.box),
            "landmarks": _rounded(face.face.points.tolist()), "crop_landmarks": _rounded(face.landmarks.tolist()),
            # Maps original pixels (x, y, 1) to crop pixels; pixel centres at integer coordinates.
            "matrix": face.matrix.tolist(),
        })
        print(out / name)
    (out / "faces.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


def add_faces_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `faces` on a subparser set."""
    faces = subparsers.add_parser(
        "faces", help="find faces (five landmarks each); with --align write aligned crops",
        description="Find the faces in an image: eye centres, nose tip and mouth corners from "
        "mediapipe's face mesh (dlib's 5-point model or Haar cascades as fallbacks). Without --align "
        "print them as JSON; with --align write DIR/face_000.png ... and DIR/faces.json.",
    )
    faces.add_argument("image", help="an image file (grey, RGB or RGBA, 8 or 16 bit)")
    faces.add_argument("--align", action="store_true", help="write aligned face crops to -o DIR")
    faces.add_argument("--size", type=_crop_size, default=512, help="crop side in pixels (default: 512)")
    faces.add_argument("--method", choices=METHODS, default="arcface",
                       help="arcface: eyes on the ArcFace template; insightface: its equal-weight "
                       "5-point fit; ffhq: FFHQ's oriented square (default: arcface)")
    faces.add_argument("--source", choices=SOURCES, default="auto",
                       help="landmark source (default: auto, the first of mediapipe, dlib, haar that finds a face)")
    faces.add_argument("-o", "--output", type=Path, metavar="DIR", help="folder for the crops and faces.json")
    faces.set_defaults(handler=_faces)


def _crop_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of pixels: {text!r}") from None
    if size < 8:
        raise argparse.ArgumentTypeError(f"crop size must be at least 8 px, got {size}")
    return size
