"""The studio main window: the canvas in the centre, panels in docks, menus and shortcuts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QByteArray, QModelIndex, QPoint, QRect, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QWidget,
)

from engine import __version__
from engine.metadata import MetadataError, read_image_settings, save_png
from engine.models.detect import ModelKind
from engine.paths import user_models_dir
from engine.pipeline.inputs import CANVAS_REF, ImageInputs
from engine.pipeline.progress import GeneratedImage, Progress
from engine.project import PROJECT_SUFFIX, ProjectError, load_project, save_project
from engine.settings import Inpaint, Job, SettingsError, SettingsFileError, load_settings, save_settings, settings_from_json, settings_to_json
from studio.bridge import EngineBridge, JobError, TaskContext
from studio.detection import DetectionController
from studio.canvas import CanvasView, LayerKind, LayerStack
from studio.canvas.imaging import rgba_to_qimage
from studio.canvas.importing import is_image_path
from studio.canvas.layers import composite, mask_array
from studio.models.history import HistoryEntry, HistoryModel
from studio.models.job_model import JobModel
from studio.panels.controlnet import ControlNetPanel
from studio.panels.history import HistoryPanel
from studio.panels.layers import LayersPanel
from studio.panels.models import ModelsPanel
from studio.panels.prompt import PromptPanel
from studio.panels.sampler import SamplerPanel
from studio.panels.tools import ToolsPanel
from studio.recovery import Autosaver
from studio.session import restore, snapshot
from studio.canvas.imaging import qimage_to_rgba

APP_NAME = "Atelier"
GenerateFn = Callable[[Job, ImageInputs, TaskContext], list[GeneratedImage]]
ScanFn = Callable[[], tuple[object, tuple[str, ...]]]


class MainWindow(QMainWindow):
    """Owns the session's models (job, layers, history) and wires panels, canvas and bridge."""

    def __init__(self, generate: GenerateFn, settings: QSettings, *, autosave_path: Path | None = None,
                 scan_models: ScanFn | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setObjectName("MainWindow")
        self._generate_fn, self._settings, self._scan_models = generate, settings, scan_models
        self._project_path: Path | None = None
        self.job_model = JobModel(parent=self)
        self.stack = LayerStack(QSize(512, 512), parent=self)
        self.stack.add_layer(LayerKind.IMAGE, "Background")
        self.stack.undo_stack.clear()
        self.history = HistoryModel(self)
        self.canvas = CanvasView(self.stack)
        self.setCentralWidget(self.canvas)
        self.bridge = EngineBridge(self)
        self.detection = DetectionController(self.canvas, self.bridge, self)
        self._running: int | None = None
        self._build_docks()
        self._build_menus()
        self._build_status()
        self._connect()
        self.autosaver = Autosaver(lambda: snapshot(self.stack, self.history, self.job_model.job), autosave_path,
                                   parent=self)
        self.autosaver.failed.connect(lambda msg: self.statusBar().showMessage(f"Autosave failed: {msg}", 10_000))
        self._restore_preferences()
        self.autosaver.start()
        if scan_models is not None:
            QTimer.singleShot(0, self.rescan_models)

    # ---- construction ---------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        # A panel taller than its share of the column scrolls instead of stretching the window: the
        # left column's panels stacked at their natural heights need more than a 1080 px screen.
        scroll = QScrollArea()
        scroll.setObjectName(f"scroll-{dock.objectName()}")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        scroll.setMinimumWidth(widget.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.prompt_panel = PromptPanel(self.job_model)
        self.sampler_panel = SamplerPanel(self.job_model)
        self.control_panel = ControlNetPanel(self.job_model)
        self.models_panel = ModelsPanel(self.job_model)
        self.layers_panel = LayersPanel(self.stack)
        self.history_panel = HistoryPanel(self.history)
        self.tools_panel = ToolsPanel(self.canvas.tools, self.canvas.canvas_actions, self.canvas.open_derive_dialog)
        self.docks = {
            "prompt": self._dock("Prompt", self.prompt_panel, left),
            "sampler": self._dock("Sampler", self.sampler_panel, left),
            "controlnet": self._dock("ControlNet", self.control_panel, left),
            "models": self._dock("Models", self.models_panel, left),
            "tools": self._dock("Tools", self.tools_panel, right),
            "layers": self._dock("Layers", self.layers_panel, right),
            "history": self._dock("History", self.history_panel, right),
        }
        self.tabifyDockWidget(self.docks["controlnet"], self.docks["models"])
        self.docks["controlnet"].raise_()

    def _action(self, menu, text: str, slot, shortcut: str | QKeySequence | None = None) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(f, "&New Canvas", self.new_canvas, QKeySequence.StandardKey.New)
        self._action(f, "&Open Project…", self._open_project_dialog, QKeySequence.StandardKey.Open)
        self._action(f, "&Save Project", self.save_project, "Ctrl+S")
        self._action(f, "Save Project &As…", lambda: self.save_project(ask=True), "Ctrl+Shift+S")
        f.addSeparator()
        self._action(f, "&Import Image…", self._import_image_dialog, "Ctrl+I")
        self._action(f, "Import Settings…", self._import_settings_dialog)
        self._action(f, "&Export Image…", self._export_image_dialog, "Ctrl+E")
        self._action(f, "Export Settings…", self._export_settings_dialog)
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = bar.addMenu("&Edit")
        actions = self.canvas.canvas_actions
        for action in (actions.undo, actions.redo, actions.paste):
            edit.addAction(action)
        tools = bar.addMenu("&Tools")
        for action in (*actions.tool_actions.values(), actions.size_down, actions.size_up):
            tools.addAction(action)
        tools.addSeparator()
        self.detection.fill_menu(tools.addMenu("&Detect"))
        tools.addAction(self.detection.upscale.use_history(self.history, self.history_panel.selected))
        gen = bar.addMenu("&Generate")
        self.generate_action = self._action(gen, "&Generate", self.generate, "Ctrl+Return")
        self.cancel_action = self._action(gen, "&Cancel", self.cancel, "Escape")
        self.cancel_action.setEnabled(False)
        view = bar.addMenu("&View")
        view.addAction(actions.zoom_fit)
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        self._action(bar.addMenu("&Help"), "&About Atelier", self._about)

    def _build_status(self) -> None:
        self.progress = QProgressBar(maximumWidth=240, textVisible=True)
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(QLabel(f"atelier {__version__}"))

    def _connect(self) -> None:
        self.bridge.step.connect(self._on_step)
        self.bridge.result.connect(self._on_result)
        self.bridge.error.connect(self._on_error)
        self.bridge.cancelled.connect(self._on_cancelled)
        self.detection.status_message.connect(lambda m: self.statusBar().showMessage(m, 5_000))
        self.detection.failed.connect(self._show_error)
        self.bridge.finished.connect(self._on_finished)
        self.job_model.invalid.connect(lambda f, m: self.statusBar().showMessage(f"{f}: {m}", 8_000))
        self.job_model.width_changed.connect(lambda _: self._fit_canvas_to_job())
        self.job_model.height_changed.connect(lambda _: self._fit_canvas_to_job())
        self.stack.canvas_size_changed.connect(self._job_follows_canvas)
        self.stack.layers_changed.connect(self._refresh_control_layers)
        self.prompt_panel.settings_dropped.connect(self.import_settings)
        self.control_panel.add_requested.connect(self._add_control_unit)
        self.control_panel.type_changed.connect(self._retype_control_layer)
        self.history_panel.place_requested.connect(self.place_on_canvas)
        self.history_panel.view.selectionModel().currentChanged.connect(lambda *_: self._show_selected_result())
        self.canvas.gesture_started.connect(self._dismiss_result)
        self.history_panel.reuse_settings_requested.connect(lambda e: self.job_model.set_job(e.job))
        self.history_panel.reuse_seed_requested.connect(lambda e: self._reuse_seed(e))
        self.history_panel.export_requested.connect(self._export_entry_dialog)
        self.models_panel.rescan_requested.connect(self.rescan_models)
        self.canvas.status_message.connect(lambda m: self.statusBar().showMessage(m, 5_000))
        self._refresh_control_layers()

    # ---- canvas <-> job -------------------------------------------------------------------
    def _fit_canvas_to_job(self) -> None:
        size = QSize(self.job_model.job.width, self.job_model.job.height)
        if size != self.stack.canvas_size:
            self.stack.resize_canvas(size)

    def _job_follows_canvas(self, size: QSize) -> None:
        if (size.width(), size.height()) != (self.job_model.job.width, self.job_model.job.height):
            self.job_model.set(width=size.width(), height=size.height())

    def _refresh_control_layers(self) -> None:
        self.control_panel.set_layer_choices([(l.id, l.name) for l in self.stack.control_layers()])

    def _add_control_unit(self, control_type: str) -> None:
        layer = self.stack.add_layer(LayerKind.CONTROL, f"{control_type} map", control_type=control_type)
        self.stack.set_current(layer.id)
        self.control_panel.add_unit(control_type, f"layer:{layer.id}")

    def _retype_control_layer(self, image: str, old: str, new: str) -> None:
        """A unit's type changed: its layer, if it was of the old type, takes the new one (and its
        default name follows), so the layer shows and saves as what the unit reads."""
        layer = self.stack.find(image.removeprefix("layer:")) if image.startswith("layer:") else None
        if layer is None or layer.control_type != old:
            return
        self.stack.set_control_type(layer.id, new)
        if layer.name == f"{old} map":
            self.stack.rename_layer(layer.id, f"{new} map")

    def _reuse_seed(self, entry: HistoryEntry) -> None:
        self.job_model.set(seed=entry.job.seed)
        self.prompt_panel.seed.lock.setChecked(True)

    # ---- generation ---------------------------------------------------------------------
    def build_request(self) -> tuple[Job, ImageInputs]:
        """The job and canvas pixels for the next generation (GUI thread; copies only)."""
        seed = self.prompt_panel.seed.seed_for_next_job()
        job = self.job_model.job.replace(seed=seed)
        images: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        if job.denoise < 1.0:
            images[CANVAS_REF] = qimage_to_rgba(composite(self.stack))[..., :3].copy()
            job = job.replace(init_image=CANVAS_REF)
            mask = mask_array(self.stack)
            if mask is not None and mask.any():
                ref = f"layer:{self.stack.find_mask().id}"
                masks[ref] = mask
                # Keep the user's blur/padding/only-masked choices; the canvas supplies the mask.
                job = job.replace(inpaint=dataclasses.replace(job.inpaint, mask=ref) if job.inpaint else Inpaint(mask=ref))
        else:
            job = job.replace(init_image=None, inpaint=None)
        for unit in job.controls:
            layer = self.stack.find(unit.image.removeprefix("layer:"))
            if layer is not None:
                images[unit.image] = qimage_to_rgba(layer.image)[..., :3].copy()
        return job, ImageInputs(images, masks)

    def generate(self) -> int | None:
        """Queue a generation with the current settings and canvas."""
        try:
            job, inputs = self.build_request()
        except (SettingsError, ValueError) as exc:
            self._show_error("Cannot generate", str(exc), "")
            return None
        fn = self._generate_fn
        self._running = self.bridge.submit(lambda ctx: fn(job, inputs, ctx))
        self.cancel_action.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.statusBar().showMessage("Generating…")
        return self._running

    def cancel(self) -> None:
        """Cancel the running generation (takes effect within one step)."""
        if self._running is not None:
            self.bridge.cancel(self._running)
            self.statusBar().showMessage("Cancelling… (stops at the next step)")
        else:
            self.canvas.cancel_gesture()
            self._dismiss_result()

    def _on_step(self, job_id: int, update: object) -> None:
        if not isinstance(update, Progress):
            return
        self.progress.setValue(round(update.fraction * 100))
        self.progress.setFormat(update.text)
        if update.preview is not None:
            image = rgba_to_qimage(update.preview)
            size = self.stack.canvas_size
            self.canvas.set_preview(image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))

    def _on_result(self, job_id: int, results: object) -> None:
        if self.detection.owns(job_id):
            return
        for result in results:  # type: ignore[attr-defined]
            self.history.add(result.image, result.job)
        if self.history.rowCount():
            self.history_panel.view.setCurrentIndex(self.history.index(0))
        notes = sorted({note for result in results for note in result.notes})  # type: ignore[attr-defined]
        done = f"Generated {len(results)} image(s): shown on the canvas until you paint; To canvas keeps it"  # type: ignore[arg-type]
        self.statusBar().showMessage("; ".join([done, *notes]), 8_000 if notes else 5_000)
        self.autosaver.save_now()

    def _on_error(self, job_id: int, error: JobError) -> None:
        if not self.detection.owns(job_id):
            self._show_error("Generation failed", error.message, error.details)

    def _on_cancelled(self, job_id: int) -> None:
        if not self.detection.owns(job_id):
            self.statusBar().showMessage("Generation cancelled", 5_000)

    def _on_finished(self, job_id: int) -> None:
        if job_id == self._running:
            self._running = None
            self.cancel_action.setEnabled(False)
            self.progress.setVisible(False)
            self._show_selected_result()

    def _show_error(self, title: str, message: str, details: str) -> None:
        """A non-blocking message with the details; nothing on the canvas changes."""
        self.statusBar().showMessage(f"{title}: {message}", 15_000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.last_error_box = box

    # ---- history, import and export ---------------------------------------------------------
    def place_on_canvas(self, entry: HistoryEntry) -> None:
        """Add a history image as a new image layer (undoable), where its preview showed it."""
        image = rgba_to_qimage(entry.image)
        layer = self.stack.add_layer(LayerKind.IMAGE, f"Seed {entry.job.seed}")
        self.stack.set_pixels(layer.id, image, QPoint(0, 0), text="Place result")
        self.stack.set_current(layer.id)
        self._dismiss_result()

    def _show_selected_result(self) -> None:
        """Preview the selected History image on the canvas where To canvas would put it (not while a
        generation shows its own previews)."""
        if self._running is not None:
            return
        entry = self.history_panel.selected()
        if entry is None:
            self.canvas.set_preview(None)
            return
        height, width = entry.image.shape[:2]
        self.canvas.set_preview(rgba_to_qimage(entry.image), QRect(0, 0, width, height))

    def _dismiss_result(self) -> None:
        """Hide the result preview (painting or Escape): nothing is selected in History any more."""
        if self._running is None and self.history_panel.selected() is not None:
            self.history_panel.view.setCurrentIndex(QModelIndex())  # hides the preview

    def import_settings(self, path: Path) -> bool:
        """Load settings from JSON or a PNG's metadata; a bad file changes nothing."""
        try:
            job = read_image_settings(path).job if path.suffix.lower() == ".png" else load_settings(path)
        except (SettingsFileError, MetadataError) as exc:
            self._show_error("Could not import settings", str(exc), "")
            return False
        self.job_model.set_job(job)
        self.statusBar().showMessage(f"Imported settings from {path.name}", 5_000)
        return True

    def export_settings(self, path: Path) -> bool:
        """Write the current settings as JSON."""
        try:
            save_settings(self.job_model.job, path)
        except OSError as exc:
            self._show_error("Could not export settings", str(exc), "")
            return False
        return True

    def export_image(self, entry: HistoryEntry, path: Path) -> bool:
        """Write a result as PNG with its metadata."""
        from PIL import Image

        try:
            save_png(Image.fromarray(entry.image), path, entry.job)
        except OSError as exc:
            self._show_error("Could not export the image", str(exc), "")
            return False
        self.statusBar().showMessage(f"Exported {path.name}", 5_000)
        return True

    def _file_dialog(self, save: bool, title: str, filters: str, name: str = "") -> Path | None:
        fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        chosen, _ = fn(self, title, name, filters)
        return Path(chosen) if chosen else None

    def _import_settings_dialog(self) -> None:
        path = self._file_dialog(False, "Import settings", "Settings or images (*.json *.png)")
        if path:
            self.import_settings(path)

    def _export_settings_dialog(self) -> None:
        path = self._file_dialog(True, "Export settings", "Settings (*.json)", "settings.json")
        if path:
            self.export_settings(path)

    def _export_entry_dialog(self, entry: HistoryEntry) -> None:
        path = self._file_dialog(True, "Export image", "PNG image (*.png)", f"atelier-{entry.job.seed}.png")
        if path:
            self.export_image(entry, path)

    def _export_image_dialog(self) -> None:
        entry = self.history_panel.selected() or (self.history.entry(0) if self.history.rowCount() else None)
        if entry is None:
            self.statusBar().showMessage("Nothing to export yet: generate an image first", 5_000)
        else:
            self._export_entry_dialog(entry)

    def _import_image_dialog(self) -> None:
        path = self._file_dialog(False, "Import image", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            try:
                self.canvas.import_image(path)
            except (OSError, ValueError) as exc:
                self._show_error("Could not import the image", str(exc), "")

    # ---- projects ----------------------------------------------------------------------------
    def new_canvas(self) -> None:
        """Start over with one empty image layer (the old session stays in the recovery file)."""
        size = self.stack.canvas_size
        from studio.canvas.layers import Layer
        from studio.canvas.imaging import new_image

        self.stack.reset(size, [Layer(LayerKind.IMAGE, "Background", new_image(size))])
        self.history.clear()
        self._project_path = None

    def save_project(self, ask: bool = False, path: Path | None = None) -> bool:
        """Save the whole session as a project file."""
        path = path or (None if ask else self._project_path)
        if path is None:
            path = self._file_dialog(True, "Save project", f"Atelier project (*{PROJECT_SUFFIX})", "untitled.atelier")
            if path is None:
                return False
        try:
            save_project(snapshot(self.stack, self.history, self.job_model.job), path)
        except (OSError, ValueError) as exc:
            self._show_error("Could not save the project", str(exc), "")
            return False
        self._project_path = path
        self.setWindowTitle(f"{path.name} — {APP_NAME}")
        self.statusBar().showMessage(f"Saved {path.name}", 5_000)
        return True

    def open_project(self, path: Path) -> bool:
        """Replace the session with a project file; a bad file changes nothing."""
        try:
            project = load_project(path)
        except ProjectError as exc:
            self._show_error("Could not open the project", str(exc), "")
            return False
        self.job_model.set_job(restore(project, self.stack, self.history))
        self._project_path = path if path.suffix == PROJECT_SUFFIX else None
        self.setWindowTitle(f"{path.name} — {APP_NAME}")
        return True

    def open_file(self, path: Path) -> bool:
        """Open a file handed over by the desktop or the command line: a project replaces the
        session; an image becomes a new layer, and a PNG's recorded settings become the job's."""
        if path.suffix == PROJECT_SUFFIX:
            return self.open_project(path)
        if not is_image_path(path):
            self._show_error("Could not open the file", f"{path}: not an Atelier project or an image", "")
            return False
        note = ""
        if path.suffix.lower() == ".png":
            try:  # first, so the canvas takes the recorded size before the picture is placed
                self.job_model.set_job(read_image_settings(path).job)
                note = " and its settings"
            except MetadataError:
                pass  # a picture without (readable) settings opens as a layer only
        try:
            self.canvas.import_image(path)
        except (OSError, ValueError) as exc:
            self._show_error("Could not open the image", str(exc), "")
            return False
        self.statusBar().showMessage(f"Opened {path.name}{note}", 10_000)
        return True

    def _open_project_dialog(self) -> None:
        path = self._file_dialog(False, "Open project", f"Atelier project (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(path)

    def rescan_models(self) -> None:
        """Scan the models folders and list what was found."""
        if self._scan_models is not None:
            scan, folders = self._scan_models()
            self.models_panel.set_scan(scan, folders)  # type: ignore[arg-type]
            upscalers = scan.of_kind(ModelKind.UPSCALER)
            self.detection.upscale.set_upscaler_files(tuple((e.name, str(e.path), e.architecture) for e in upscalers))
            self.sampler_panel.hires.set_upscaler_files(tuple((e.name, f"{e.path}\n{e.architecture}") for e in upscalers))
            if self._first_run and self.job_model.job.model.path is None:
                # Nothing remembered and nothing chosen yet: start with the default model and its settings.
                self.models_panel.choose_default()
            self._first_run = False

    # ---- preferences ----------------------------------------------------------------------
    def _restore_preferences(self) -> None:
        geometry = self._settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(self._first_size())
        state = self._settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        saved = self._settings.value("job/last")
        self._first_run = saved is None
        if isinstance(saved, str):
            try:
                self.job_model.set_job(settings_from_json(saved))
            except SettingsError:
                pass  # an old or damaged preference: keep the defaults

    def _first_size(self) -> QSize:
        """1400 x 900, or the screen's free area less a margin where that is smaller."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        size = QSize(1400, 900)
        if screen is not None:
            free = screen.availableGeometry().size()
            size = size.boundedTo(QSize(max(free.width() - 40, 640), max(free.height() - 60, 480)))
        return size

    def save_preferences(self) -> None:
        """Remember window layout and the last-used settings."""
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/state", self.saveState())
        self._settings.setValue("job/last", settings_to_json(self.job_model.job))
        self._settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.save_preferences()
        self.bridge.shutdown(5_000)
        self.autosaver.discard()
        super().closeEvent(event)

    def _about(self) -> None:
        QMessageBox.about(self, "About Atelier", f"<b>Atelier {__version__}</b><p>A local studio for diffusion "
                          "and flow image generation.</p><p>Models folder: " + str(user_models_dir()) + "</p>")
