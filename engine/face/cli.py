"""`atelier faces IMAGE`: print the faces found as JSON, or with --align write aligned crops and
their landmarks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.native_logs import native_stderr_silenced

# Kept literal (not imported from the face modules) so `atelier --help` loads no cv2 or mediapipe;
# test_cli checks them against the registries.
METHODS = ("arcface", "insightface", "ffhq")
SOURCES = ("auto", "mediapipe", "dlib", "haar")


def _faces(args: argparse.Namespace) -> int:
    """Find the faces in an image; print them as JSON, or write aligned crops and faces.json."""
    from engine.cli import CommandError
    from engine.face.align import align_face
    from engine.face.export import faces_record, write_aligned_faces
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
    if not args.align:
        print(json.dumps(faces_record(str(path), rgb.shape[1], rgb.shape[0], faces), indent=2))
        return 0
    aligned = [align_face(rgb, face, args.size, args.method) for face in faces]
    for written in write_aligned_faces(args.output, str(path), aligned):
        print(written)
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
