"""Detection in the studio: run a detector on the composited canvas through the bridge (never on
the GUI thread), show the result as the canvas's detections overlay, toggle it, export it as
COCO JSON. The window adds `fill_menu`'s actions to a menu and shows `status_message`/`failed`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from engine.detect.registry import DEFAULT_DETECTOR, DEFAULT_MIN_SCORE, DETECTORS, is_onnx_path
from studio.bridge import EngineBridge, JobError, TaskContext
from studio.canvas.detections import DetectionsOverlay
from studio.canvas.imaging import qimage_to_rgba
from studio.canvas.layers import composite
from studio.canvas.view import CanvasView
from studio.faces import FaceAlignController
from studio.upscale import UpscaleController

if TYPE_CHECKING:
    from engine.detect.boxes import Detection

EXPORT_IMAGE_NAME = "canvas.png"  # the COCO file's image: the canvas as composited when detected


@dataclass(frozen=True)
class DetectionResult:
    """What one run found on the canvas, with what the export needs to describe it."""

    detector: str
    labels: tuple[str, ...]
    keypoint_names: tuple[str, ...]
    detections: tuple[Detection, ...]
    width: int
    height: int


def detection_task(image: np.ndarray, detector: str, min_score: float) -> Callable[[TaskContext], DetectionResult]:
    """A bridge task: open `detector`, run it on `image` (RGBA, a copy), close it."""

    def run(ctx: TaskContext) -> DetectionResult:
        from engine.detect.registry import open_detector, run_detector  # engine work: worker thread

        ctx.check()
        opened = open_detector(detector)
        try:
            found = run_detector(opened, image, min_score)
            labels, keypoint_names = opened.labels, opened.keypoint_names
        finally:
            opened.close()
        return DetectionResult(detector, labels, keypoint_names, tuple(found), image.shape[1], image.shape[0])

    return run


class DetectionController(QObject):
    """The Detect, Show detections and Export detections actions, the detector choice, and the
    canvas overlay they drive."""

    status_message = Signal(str)
    failed = Signal(str, str, str)  # title, message, details
    detected = Signal(object)  # the DetectionResult, once the overlay shows it

    def __init__(self, canvas: CanvasView, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas, self._bridge, self._parent = canvas, bridge, parent
        self.overlay = DetectionsOverlay()
        canvas.scene().addItem(self.overlay)
        self.detector = DEFAULT_DETECTOR
        self.min_score = DEFAULT_MIN_SCORE
        self.result: DetectionResult | None = None
        self._job: int | None = None  # the run in progress
        self._jobs: set[int] = set()  # every run's id: their signals may arrive after `finished`
        self._build_actions()
        # Align Faces lives in this menu; its signals reach the window through this controller's.
        self.faces = FaceAlignController(canvas, bridge, parent)
        self.faces.status_message.connect(self.status_message)
        self.faces.failed.connect(self.failed)
        # Upscale… (Tools menu) shares the window's wiring the same way.
        self.upscale = UpscaleController(canvas, bridge, parent)
        self.upscale.status_message.connect(self.status_message)
        self.upscale.failed.connect(self.failed)
        bridge.result.connect(self._on_result)
        bridge.error.connect(self._on_error)
        bridge.finished.connect(self._on_finished)
        canvas.stack.canvas_size_changed.connect(lambda _: self.clear())  # boxes no longer fit

    def _action(self, text: str, slot: Callable[[], object], checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setCheckable(checkable)
        action.triggered.connect(lambda *_: slot())
        return action

    def _build_actions(self) -> None:
        self.detect_action = self._action("&Detect", self.detect)
        self.detect_action.setShortcut(QKeySequence("Ctrl+Shift+D"))
        self.show_action = self._action("&Show Detections", lambda: self.set_visible(self.show_action.isChecked()),
                                        checkable=True)
        self.export_action = self._action("&Export Detections (COCO JSON)…", self._export_dialog)
        self.onnx_action = self._action("Use an ONNX Model…", self._choose_onnx)
        self.detector_group = QActionGroup(self)
        self.detector_actions: dict[str, QAction] = {}
        for name, spec in DETECTORS.items():
            action = self._action(name, lambda n=name: self.set_detector(n), checkable=True)
            action.setToolTip(spec.summary)
            self.detector_group.addAction(action)
            self.detector_actions[name] = action
        self.detector_actions[DEFAULT_DETECTOR].setChecked(True)
        self._sync_actions()

    def fill_menu(self, menu: QMenu) -> None:
        """Put the detection actions and the detector choice into `menu`."""
        menu.addAction(self.detect_action)
        menu.addAction(self.show_action)
        menu.addAction(self.export_action)
        menu.addAction(self.faces.align_action)
        menu.addSeparator()
        for action in self.detector_actions.values():
            menu.addAction(action)
        menu.addAction(self.onnx_action)

    def _sync_actions(self) -> None:
        self.detect_action.setEnabled(self._job is None)
        has_result = self.result is not None
        self.show_action.setEnabled(has_result)
        self.show_action.setChecked(has_result and self.overlay.isVisible())
        self.export_action.setEnabled(has_result)

    def set_detector(self, detector: str) -> None:
        """Choose a registered detector by name or a YOLOv8 .onnx file."""
        if detector not in DETECTORS and not is_onnx_path(detector):
            raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)} or a .onnx file")
        self.detector = detector
        if detector in self.detector_actions:
            self.detector_actions[detector].setChecked(True)
        else:
            for action in self.detector_actions.values():
                action.setChecked(False)

    def detect(self) -> int | None:
        """Queue the chosen detector on the composited canvas; the overlay shows what it finds."""
        if self._job is not None:
            return None
        image = qimage_to_rgba(composite(self._canvas.stack)).copy()  # (H, W, 4): crosses threads as a copy
        self._job = self._bridge.submit(detection_task(image, self.detector, self.min_score))
        self._jobs.add(self._job)
        self._sync_actions()
        self.status_message.emit(f"Detecting with {Path(self.detector).name}…")
        return self._job

    def owns(self, job_id: int) -> bool:
        """Whether a bridge job is this controller's, Align Faces' or Upscale's (the window leaves it to them)."""
        return job_id in self._jobs or self.faces.owns(job_id) or self.upscale.owns(job_id)

    def set_visible(self, visible: bool) -> None:
        """Show or hide the overlay."""
        self.overlay.setVisible(visible)
        self._sync_actions()

    def clear(self) -> None:
        """Forget the detections and empty the overlay."""
        self.result = None
        self.overlay.clear()
        self._sync_actions()

    def export(self, path: Path) -> bool:
        """Write the last detections as COCO JSON; reports failures through `failed`."""
        from engine.detect.coco import to_coco

        if self.result is None:
            self.failed.emit("Nothing to export", "Run Detect first", "")
            return False
        r = self.result
        coco = to_coco([(EXPORT_IMAGE_NAME, r.width, r.height, r.detections)], r.labels, r.keypoint_names,
                       description=f"detections by Atelier ({Path(r.detector).name}, min score {self.min_score})")
        try:
            path.write_text(json.dumps(coco, indent=1) + "\n")
        except OSError as exc:
            self.failed.emit("Could not export the detections", str(exc), "")
            return False
        self.status_message.emit(f"Exported {len(r.detections)} detections to {path.name}")
        return True

    def _on_result(self, job_id: int, result: object) -> None:
        if job_id != self._job or not isinstance(result, DetectionResult):
            return
        self.result = result
        self.overlay.set_detections(result.detections, result.labels)
        self.overlay.setVisible(True)
        self._sync_actions()
        count = len(result.detections)
        self.status_message.emit(f"{count} detection{'s' if count != 1 else ''} ({Path(result.detector).name})")
        self.detected.emit(result)

    def _on_error(self, job_id: int, error: JobError) -> None:
        if job_id == self._job:
            self.failed.emit("Detection failed", error.message, error.details)

    def _on_finished(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None
            self._sync_actions()

    def _export_dialog(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self._parent, "Export detections", "detections.json",
                                                "COCO JSON (*.json)")
        if chosen:
            self.export(Path(chosen))

    def _choose_onnx(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self._parent, "YOLOv8 ONNX detector", "", "ONNX model (*.onnx)")
        if chosen:
            self.set_detector(chosen)
            self.status_message.emit(f"Detector: {Path(chosen).name}")
