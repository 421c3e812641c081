"""Detector benchmark: per registered detector, the time to open it, the first and the median of
later runs on skimage's 512 px astronaut, and what it finds; plus a YOLOv8-layout ONNX model of
640 x 640 input with an 8400-candidate, 80-class head (random, so decode and NMS see a full head)
on both backends.

Run: python benchmarks/detectors.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from engine.detect.registry import DETECTORS, Detector, run_detector  # noqa: E402
from engine.detect.yolo_onnx import load_onnx_detector  # noqa: E402


def _time(detector: Detector, image: np.ndarray, repeats: int) -> tuple[float, float, list]:  # type: ignore[type-arg]
    start = time.perf_counter()
    found = run_detector(detector, image)
    first = time.perf_counter() - start
    later = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_detector(detector, image)
        later.append(time.perf_counter() - start)
    return first, statistics.median(later), found


def _full_head_model(folder: Path) -> Path:
    """A (1, 84, 8400) head from a 640 x 640 input (the tests' tiny-model builder, at full size)."""
    from tests.engine.detect.tiny_onnx import build_yolo_onnx

    rng = np.random.default_rng(0)
    n = 8400
    bias = np.concatenate([rng.uniform(0, 640, (2, n)), rng.uniform(10, 200, (2, n)), rng.uniform(0, 0.5, (80, n))])
    return build_yolo_onnx(folder / "head.onnx", bias, None, (640, 640), {i: f"c{i}" for i in range(80)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image = data.astronaut()
    print(f"{'detector':18s} {'open s':>7s} {'first s':>8s} {'median s':>9s}  found")
    for name, spec in DETECTORS.items():
        start = time.perf_counter()
        detector = spec.make()
        opened = time.perf_counter() - start
        first, median, found = _time(detector, image, args.repeats)
        detector.close()
        summary = ", ".join(f"{d.label} {d.score:.2f}" for d in found[:6]) + (" ..." if len(found) > 6 else "")
        print(f"{name:18s} {opened:7.3f} {first:8.3f} {median:9.3f}  {len(found)}: {summary}")
    with tempfile.TemporaryDirectory() as tmp:
        model = _full_head_model(Path(tmp))
        for backend in ("onnxruntime", "opencv"):
            start = time.perf_counter()
            detector = load_onnx_detector(model, backend=backend)
            opened = time.perf_counter() - start
            first, median, found = _time(detector, image, args.repeats)
            print(f"{'onnx/' + backend:18s} {opened:7.3f} {first:8.3f} {median:9.3f}  {len(found)} after NMS")


if __name__ == "__main__":
    main()
