"""Tools > Detect > Align Faces: find every face on the composited canvas and align it (engine.face)
through the bridge, never on the GUI thread, then ask for a folder and write face_000.png ... and
faces.json there, as `atelier faces --align` does (engine.face.export writes both)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QWidget

from studio.bridge import EngineBridge, JobError, TaskContext
from studio.canvas.imaging import qimage_to_rgba
from studio.canvas.layers import composite
from studio.canvas.view import CanvasView

if TYPE_CHECKING:
    from engine.face.align import AlignedFace

CROP_SIZE = 512  # `atelier faces --align`'s default crop side
METHOD = "arcface"  # and its default alignment
RECORD_IMAGE = "canvas"  # what faces.json names as the picture the faces came from


@dataclass(frozen=True)
class AlignedFaces:
    """What one run found on the canvas: every face aligned, largest first (none when no face)."""

    faces: tuple[AlignedFace, ...]
    message: str  # why there are none, when there are none


def align_task(image: np.ndarray, size: int = CROP_SIZE, method: str = METHOD) -> Callable[[TaskContext], AlignedFaces]:
    """A bridge task: find the faces in `image` (RGBA, a copy) and align each at `size` by `method`."""

    def run(ctx: TaskContext) -> AlignedFaces:
        from engine.face import FaceNotFoundError, align_face, find_faces  # engine work: worker thread

        ctx.check()
        try:
            faces = find_faces(image)
        except FaceNotFoundError as exc:
            return AlignedFaces((), str(exc))
        ctx.check()
        return AlignedFaces(tuple(align_face(image, face, size, method) for face in faces), "")

    return run


class FaceAlignController(QObject):
    """The Align Faces action: a bridge run, then a folder dialog (`choose_folder`, replaceable for
    tests) and the files written."""

    status_message = Signal(str)
    failed = Signal(str, str, str)  # title, message, details
    written = Signal(object)  # the list of crop paths, once faces.json is written too

    def __init__(self, canvas: CanvasView, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas, self._bridge, self._parent = canvas, bridge, parent
        self._job: int | None = None
        self._jobs: set[int] = set()
        self.choose_folder: Callable[[], Path | None] = self._folder_dialog
        self.align_action = QAction("&Align Faces…", self)
        self.align_action.setToolTip("Find the faces on the canvas and export upright aligned crops with "
                                     "their five landmarks (face_000.png … and faces.json)")
        self.align_action.triggered.connect(lambda *_: self.align())
        bridge.result.connect(self._on_result)
        bridge.error.connect(self._on_error)
        bridge.finished.connect(self._on_finished)

    def align(self) -> int | None:
        """Queue face finding and alignment on the composited canvas."""
        if self._job is not None:
            return None
        image = qimage_to_rgba(composite(self._canvas.stack)).copy()  # (H, W, 4): crosses threads as a copy
        self._job = self._bridge.submit(align_task(image))
        self._jobs.add(self._job)
        self.align_action.setEnabled(False)
        self.status_message.emit("Finding faces…")
        return self._job

    def owns(self, job_id: int) -> bool:
        """Whether a bridge job is this controller's."""
        return job_id in self._jobs

    def write(self, folder: Path, faces: tuple[AlignedFace, ...]) -> bool:
        """Write the crops and faces.json into `folder`; reports failures through `failed`."""
        from engine.face.export import RECORD_NAME, write_aligned_faces

        try:
            paths = write_aligned_faces(folder, RECORD_IMAGE, faces)
        except OSError as exc:
            self.failed.emit("Could not write the aligned faces", str(exc), "")
            return False
        self.status_message.emit(f"Wrote {len(paths)} aligned face(s) and {RECORD_NAME} to {folder}")
        self.written.emit(paths)
        return True

    def _on_result(self, job_id: int, result: object) -> None:
        if job_id != self._job or not isinstance(result, AlignedFaces):
            return
        if not result.faces:
            self.status_message.emit(f"No face found on the canvas ({result.message}); nothing written")
            return
        folder = self.choose_folder()
        if folder is not None:
            self.write(folder, result.faces)

    def _on_error(self, job_id: int, error: JobError) -> None:
        if job_id == self._job:
            self.failed.emit("Aligning faces failed", error.message, error.details)

    def _on_finished(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None
            self.align_action.setEnabled(True)

    def _folder_dialog(self) -> Path | None:
        chosen = QFileDialog.getExistingDirectory(self._parent, "Folder for the aligned faces")
        return Path(chosen) if chosen else None
