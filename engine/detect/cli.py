"""`atelier detect IMAGE -o OUT.json`: run a detector on an image file, write COCO JSON and,
optionally, a PNG with the detections drawn."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.detect.registry import DEFAULT_DETECTOR, DEFAULT_MIN_SCORE, DETECTORS


def _min_score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _labels(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty class name in {text!r}")
    return names


def _detect(args: argparse.Namespace) -> int:
    """Detect objects in one image and write them as COCO JSON (and an overlay PNG)."""
    from PIL import Image

    from engine.detect.coco import to_coco  # torch loads only when the command runs
    from engine.detect.overlay import draw_detections
    from engine.detect.registry import open_detector, run_detector
    from engine.native_logs import native_stderr_silenced
    from engine.pipeline.inputs import read_rgb

    image = read_rgb(Path(args.image))  # grey, RGBA, palette and 16-bit files read as RGB
    with native_stderr_silenced():  # mediapipe's native log lines would bury the answer
        detector = open_detector(args.detector, args.labels, args.backend)
        try:
            found = run_detector(detector, image, args.min_score)
            labels, keypoint_names = detector.labels, detector.keypoint_names
        finally:
            detector.close()
    height, width = image.shape[:2]
    coco = to_coco([(Path(args.image).name, width, height, found)], labels, keypoint_names,
                   description=f"detections by Atelier ({detector.name}, min score {args.min_score})")
    args.output.write_text(json.dumps(coco, indent=1) + "\n")
    print(f"{len(found)} detection{'s' if len(found) != 1 else ''}: {args.output}")
    if args.overlay is not None:
        Image.fromarray(draw_detections(image, found, labels)).save(args.overlay)
        print(args.overlay)
    return 0


def add_detect_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `detect` on the command line's subparser set."""
    names = "; ".join(f"{name}: {spec.summary}" for name, spec in DETECTORS.items())
    cmd = subparsers.add_parser(
        "detect", help="find faces, hands, people or shapes in an image; write COCO JSON",
        description="Run a detector on an image and write what it finds as COCO-format JSON "
        "(and, with --overlay, a PNG with boxes, labels and scores). Huge images are shrunk for "
        "the detector and the boxes mapped back; grey, RGBA and 16-bit images are read as RGB.",
    )
    cmd.add_argument("image", help="the image file")
    cmd.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME|FILE.onnx",
                     help=f"{names}; or a YOLOv8 detector exported to ONNX (default: {DEFAULT_DETECTOR})")
    cmd.add_argument("--labels", type=_labels, metavar="A,B,C",
                     help="class names of an ONNX detector, in class order (default: its own metadata)")
    cmd.add_argument("--backend", choices=("onnxruntime", "opencv"),
                     help="what runs an ONNX detector (default: onnxruntime)")
    cmd.add_argument("--min-score", type=_min_score, default=DEFAULT_MIN_SCORE, metavar="S",
                     help=f"keep detections scoring at least S, in [0, 1] (default: {DEFAULT_MIN_SCORE})")
    cmd.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.json",
                     help="where to write the COCO JSON")
    cmd.add_argument("--overlay", type=Path, metavar="OUT.png", help="also write the image with the detections drawn")
    cmd.set_defaults(handler=_detect)
