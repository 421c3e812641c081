"""GUI responsiveness while a generation runs: `python benchmarks/ui.py`.

A 5 ms QTimer measures how late the event loop runs while the engine generates on the bridge's
worker thread (targets: p99 lateness < 16 ms, max < 50 ms); then the time to handle one
brush-stroke segment on a 1024x1024 canvas is measured while a generation runs too.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.models.families import Family  # noqa: E402
from engine.pipeline import Engine  # noqa: E402
from engine.settings import ModelRef  # noqa: E402
from studio.generation import EngineSession  # noqa: E402
from studio.window import MainWindow  # noqa: E402
from tests.engine.models.tiny import build_tiny  # noqa: E402

TICK_MS = 5


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_stall(window: MainWindow, app: QApplication) -> list[float]:
    """Lateness (ms) of each 5 ms tick while one generation runs."""
    late: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    timer = QTimer(interval=TICK_MS)
    timer.timeout.connect(tick)
    done = [False]
    window.bridge.finished.connect(lambda _id: done.__setitem__(0, True))
    timer.start()
    window.generate()
    while not done[0]:
        app.processEvents()
        time.sleep(0.0005)
    timer.stop()
    return late[1:]


def measure_brush(window: MainWindow, app: QApplication, session: EngineSession) -> list[float]:
    """Milliseconds per brush segment on a 1024x1024 canvas while a generation runs."""
    from engine.pipeline.inputs import ImageInputs
    from studio.canvas import _bench

    job = window.job_model.job  # 128 px: the tiny test model downsamples by 2 only, so 1024 px would
    window.job_model.set(width=1024, height=1024)  # take hours; the canvas follows the job size
    window.canvas.zoom_to_fit()
    window.bridge.submit(lambda ctx: session.generate(job, ImageInputs(), ctx))  # the same bridge and engine
    _press, segments = _bench._stroke(window.canvas, repaint=False)
    while window.bridge.pending:
        app.processEvents()
    return segments


def main() -> int:
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny(Family.SD1, Path(tmp))
        session = EngineSession(Engine(device="cpu"))
        window = MainWindow(session.generate, QSettings(str(Path(tmp) / "p.ini"), QSettings.Format.IniFormat),
                            autosave_path=Path(tmp) / "rec.atelier")
        window.show()
        window.job_model.set(model=ModelRef(name="tiny", path=str(model.folder)), prompt="a red star",
                             steps=60, width=128, height=128, sampler="dpmpp_2m")
        measure_stall(window, app)  # warm-up: loads the model
        late = measure_stall(window, app)
        print(f"event-loop lateness during generation: {len(late)} ticks, "
              f"p50 {statistics.median(late):.2f} ms, p99 {_percentile(late, 0.99):.2f} ms "
              f"(target < 16), max {max(late):.2f} ms (target < 50)")
        segs = measure_brush(window, app, session)
        print(f"brush segment at 1024x1024 during generation: median {statistics.median(segs):.2f} ms, "
              f"p95 {_percentile(segs, 0.95):.2f} ms, max {max(segs):.2f} ms (target < 16)")
        window.bridge.shutdown()
        window.autosaver.discard()
    return 0


if __name__ == "__main__":
    sys.exit(main())
