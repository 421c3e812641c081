"""Control preprocessor benchmark: milliseconds per call at 512 x 512 on a real photo.

Run: python benchmarks/control.py [--repeats 15] [--size 512]
Times every preprocessor of engine.control.PREPROCESSORS (default params) on the astronaut photo
resized to SIZE x SIZE: one warm-up call is excluded (OpenCV builds its colour tables and MediaPipe
its graphs on first use), then the median of REPEATS calls. The OpenCV-based ones are held to the
100 ms target (ratio = ms / 100, pass <= 1.0). Pose is reported, not held to it: once as the
registry call (opens MediaPipe's graphs every time) and once with a reused PoseDetector.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.control import PREPROCESSORS, PoseDetector  # noqa: E402

TARGET_MS = 100.0


def photo(size: int) -> np.ndarray:
    """The astronaut photo (a real picture of a person) at size x size, (size, size, 3) uint8."""
    from skimage import data

    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call, in milliseconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    image = photo(args.size)
    print(f"control preprocessors at {args.size} x {args.size}, astronaut photo, median of {args.repeats} "
          f"calls after a warm-up; OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads")
    failed = []
    for pre in PREPROCESSORS.values():
        ms = median_ms(lambda pre=pre: pre(image), args.repeats)
        if pre.realtime:
            ratio = ms / TARGET_MS
            verdict = "ok" if ratio <= 1.0 else "OVER TARGET"
            print(f"  {pre.id:<9} {ms:8.1f} ms   ratio to {TARGET_MS:.0f} ms target {ratio:5.2f}  {verdict}")
            if ratio > 1.0:
                failed.append(pre.id)
        else:
            print(f"  {pre.id:<9} {ms:8.1f} ms   (registry call: detect + draw, opens MediaPipe each call; "
                  "not held to the target)")
    with PoseDetector() as detector:
        ms = median_ms(lambda: detector.detect(image), args.repeats)
    print(f"  {'pose':<9} {ms:8.1f} ms   (detection only, reused PoseDetector: body, hands and face)")
    print("all OpenCV-based preprocessors within target" if not failed else f"OVER TARGET: {', '.join(failed)}")


if __name__ == "__main__":
    main()
