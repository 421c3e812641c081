"""Tools > Upscale…: upscale the composited canvas or the selected History image with an upscaler from
engine.upscale, through the bridge (never on the GUI thread), with per-tile progress and cancel.

The result becomes a new image layer on top of the image layers. The canvas is resized to the result's
size and every existing layer is scaled with it (`LayerStack.resize_canvas(..., scale_content=True)`),
so masks, control maps and paint stay aligned with the upscaled picture; one undo step reverts both.
The result also enters History with a Job that records the Upscale: the source entry's Job, or a
default Job of the canvas's size when the canvas was upscaled."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PySide6.QtCore import QObject, QPoint, QSize, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from engine.settings import Job, SettingsError, Upscale
from studio.bridge import EngineBridge, JobError, TaskContext
from studio.canvas.imaging import qimage_to_rgba, rgba_to_qimage
from studio.canvas.layers import MAX_CANVAS_SIDE, LayerKind, composite
from studio.canvas.view import CanvasView
from studio.models.history import HistoryEntry, HistoryModel

Source = Literal["canvas", "history"]


@dataclass(frozen=True)
class UpscaleRequest:
    """What the dialog asks for: the source, the upscaler by name, the factor and the tile side (None: auto)."""

    source: Source
    upscaler: str
    scale: float
    tile: int | None = None


@dataclass(frozen=True)
class TileProgress:
    """One finished tile of an upscale run."""

    done: int
    total: int


@dataclass(frozen=True)
class UpscaleResult:
    """The upscaled image (H, W, 3) uint8 and the Job its History entry records."""

    image: np.ndarray
    job: Job


def upscaler_label(upscaler: str) -> str:
    """How an upscaler is named in the GUI: a model file by its stem, not its whole path."""
    return Path(upscaler).stem if ("/" in upscaler or "\\" in upscaler) else upscaler


def upscale_task(rgb: np.ndarray, request: UpscaleRequest, job: Job) -> Callable[[TaskContext], UpscaleResult]:
    """A bridge task: upscale `rgb` (a copy) as `request` asks, reporting a TileProgress per tile."""

    def run(ctx: TaskContext) -> UpscaleResult:
        from engine.sampling import CancelToken  # engine work: worker thread
        from engine.upscale import upscale_image

        token = CancelToken()
        ctx.on_cancel(token.cancel)
        ctx.check()
        image = upscale_image(rgb, request.upscaler, request.scale, tile=request.tile,
                              on_tile=lambda done, total: ctx.report(TileProgress(done, total)), cancel=token)
        return UpscaleResult(image, job)

    return run


def recorded_job(source: Job | None, request: UpscaleRequest, size: QSize) -> Job:
    """The Job a result's History entry keeps: the source's (else a default of the source's size) with the Upscale."""
    upscale = Upscale(request.upscaler, request.scale, "pixel", request.tile)
    if source is not None:
        return dataclasses.replace(source, upscale=upscale)
    try:
        return Job(width=size.width(), height=size.height(), upscale=upscale)
    except SettingsError:  # a canvas size no job can have: keep the default size
        return Job(upscale=upscale)


class UpscaleController(QObject):
    """The Upscale… action, its dialog, and the bridge run whose result becomes a layer and a History entry."""

    status_message = Signal(str)
    failed = Signal(str, str, str)  # title, message, details
    progress = Signal(int, int)  # tiles done, total
    running_changed = Signal(bool)
    upscaled = Signal(object)  # the HistoryEntry, once the layer is placed

    def __init__(self, canvas: CanvasView, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas, self._bridge, self._parent = canvas, bridge, parent
        self._history: HistoryModel | None = None
        self._selected: Callable[[], HistoryEntry | None] = lambda: None
        self._job: int | None = None
        self._jobs: set[int] = set()  # every run's id: their signals may arrive after `finished`
        self._request: UpscaleRequest | None = None
        self.upscaler_files: tuple[tuple[str, str, str], ...] = ()  # (name, path, architecture) from the last scan
        self.upscale_action = QAction("&Upscale…", self)
        self.upscale_action.setToolTip("Upscale the canvas or the selected History image into a new layer")
        self.upscale_action.triggered.connect(lambda *_: self.open_dialog())
        bridge.step.connect(self._on_step)
        bridge.result.connect(self._on_result)
        bridge.error.connect(self._on_error)
        bridge.cancelled.connect(self._on_cancelled)
        bridge.finished.connect(self._on_finished)

    def use_history(self, history: HistoryModel, selected: Callable[[], HistoryEntry | None]) -> QAction:
        """Record results in `history`; `selected` gives the History image to upscale. Returns the action."""
        self._history, self._selected = history, selected
        return self.upscale_action

    def set_upscaler_files(self, files: tuple[tuple[str, str, str], ...]) -> None:
        """The upscaler model files a models scan found, (name, path, architecture): the dialog lists them."""
        self.upscaler_files = files

    @property
    def running(self) -> bool:
        """Whether an upscale is queued or running."""
        return self._job is not None

    def owns(self, job_id: int) -> bool:
        """Whether a bridge job is this controller's."""
        return job_id in self._jobs

    def open_dialog(self) -> QWidget:
        """Show the Upscale dialog (non-modal); OK starts the run, Cancel stops it."""
        from studio.upscale_dialog import UpscaleDialog

        dialog = UpscaleDialog(self, has_history_image=self._selected() is not None, parent=self._parent)
        dialog.show()
        return dialog

    def start(self, request: UpscaleRequest) -> int | None:
        """Queue an upscale of the request's source; reports refusals through `failed`."""
        if self._job is not None:
            return None
        entry = self._selected() if request.source == "history" else None
        if request.source == "history" and entry is None:
            self.failed.emit("Cannot upscale", "Select an image in History first", "")
            return None
        try:
            job = recorded_job(entry.job if entry is not None else None, request, self._canvas.stack.canvas_size)
        except SettingsError as exc:
            self.failed.emit("Cannot upscale", f"{exc.path}: {exc.message}", "")
            return None
        rgb = entry.image if entry is not None else qimage_to_rgba(composite(self._canvas.stack))
        width, height = round(rgb.shape[1] * request.scale), round(rgb.shape[0] * request.scale)
        if max(width, height) > MAX_CANVAS_SIDE:
            self.failed.emit("Cannot upscale", f"the result would be {width}x{height} px; the canvas allows at "
                             f"most {MAX_CANVAS_SIDE} px per side", "")
            return None
        self._request = request
        self._job = self._bridge.submit(upscale_task(rgb.copy(), request, job))  # crosses threads as a copy
        self._jobs.add(self._job)
        self.upscale_action.setEnabled(False)
        self.running_changed.emit(True)
        self.status_message.emit(f"Upscaling ×{request.scale:g} with {upscaler_label(request.upscaler)}…")
        return self._job

    def cancel(self) -> None:
        """Stop the run in progress at its next tile."""
        if self._job is not None:
            self._bridge.cancel(self._job)

    def place(self, result: UpscaleResult) -> HistoryEntry | None:
        """Resize the canvas to the result (scaling every layer), add it as a layer, record it in History."""
        image = rgba_to_qimage(result.image)
        stack = self._canvas.stack
        up = result.job.upscale
        name = f"Upscaled ({upscaler_label(up.upscaler)} ×{up.scale:g})" if up is not None else "Upscaled"
        stack.undo_stack.beginMacro(name)
        try:
            stack.resize_canvas(image.size(), scale_content=True)
            layer = stack.add_layer(LayerKind.IMAGE, name)
            stack.set_pixels(layer.id, image, QPoint(0, 0), text=name)
        finally:
            stack.undo_stack.endMacro()
        stack.set_current(layer.id)
        entry = self._history.add(result.image, result.job) if self._history is not None else None
        self.status_message.emit(f"Upscaled to {image.width()}x{image.height()} px: {name}")
        self.upscaled.emit(entry)
        return entry

    def _on_step(self, job_id: int, update: object) -> None:
        if job_id == self._job and isinstance(update, TileProgress):
            self.progress.emit(update.done, update.total)

    def _on_result(self, job_id: int, result: object) -> None:
        if job_id == self._job and isinstance(result, UpscaleResult):
            try:
                self.place(result)
            except ValueError as exc:
                self.failed.emit("Could not place the upscaled image", str(exc), "")

    def _on_error(self, job_id: int, error: JobError) -> None:
        if job_id == self._job:
            self.failed.emit("Upscaling failed", error.message, error.details)

    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self.status_message.emit("Upscale cancelled; the canvas and History are unchanged")

    def _on_finished(self, job_id: int) -> None:
        if job_id == self._job:
            self._job, self._request = None, None
            self.upscale_action.setEnabled(True)
            self.running_changed.emit(False)
