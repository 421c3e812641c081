"""Drives the real app in a subprocess for the crash-recovery test.

`crash MODEL`: paint, add a pose layer, autosave, start a long generation, print READY after its
first step and keep running until killed. `recover`: start again, restore the autosave, print what
came back (a digest of every layer's pixels, and whether the pose layer kept its keypoints).
"""

from __future__ import annotations

import hashlib
import json
import sys

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from engine.control import draw_pose
from engine.pipeline import Engine
from engine.settings import ModelRef
from studio.app import create_window, offer_recovery
from studio.canvas.derive import write_control_layer
from studio.canvas.imaging import qimage_to_rgba, rgba_to_qimage
from studio.generation import EngineSession
from tests.engine.control.images import stick_figure

SIDE = 64


def _digest(window) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256(b"".join(qimage_to_rgba(l.image).tobytes() for l in window.stack.layers())).hexdigest()


def crash(model: str) -> None:
    import numpy as np

    app = QApplication(sys.argv[:1])
    window = create_window(EngineSession(Engine(device="cpu")))
    window.show()
    window.job_model.set(model=ModelRef(name="tiny", path=model), prompt="survive the crash", steps=500,
                         width=SIDE, height=SIDE, sampler="euler")
    patch = np.zeros((16, 16, 4), np.uint8)
    patch[..., 0], patch[..., 3] = 220, 255
    window.stack.set_pixels(window.stack.layers()[0].id, rgba_to_qimage(patch), QPoint(8, 8))
    write_control_layer(window.stack, draw_pose(stick_figure(SIDE), SIDE, SIDE), stick_figure(SIDE), "pose")
    window.autosaver.saved.connect(lambda _p: window.generate())
    window.bridge.step.connect(lambda *_: print("READY", _digest(window), flush=True))
    window.autosaver.save_now()
    app.exec()


def recover() -> None:
    app = QApplication(sys.argv[:1])
    window = create_window(EngineSession(Engine(device="cpu")))
    restored = offer_recovery(window, ask=False)
    poses = [layer.pose for layer in window.stack.control_layers()]
    print(json.dumps({"restored": restored, "prompt": window.job_model.job.prompt, "digest": _digest(window),
                      "pose_kept": poses == [stick_figure(SIDE)]}), flush=True)
    window.close()
    app.quit()


if __name__ == "__main__":
    crash(sys.argv[2]) if sys.argv[1] == "crash" else recover()
