"""Bringing pictures onto the canvas: reading files, placing them, and reading drops and the clipboard."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPainter, QPixmap

from studio.canvas.imaging import LAYER_FORMAT, new_image


def load_image(path: str | Path) -> QImage:
    """Read an image file (EXIF orientation applied); ValueError naming the file when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no image file at {path}")
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"could not read {path} as an image: {reader.errorString()}")
    return image.convertToFormat(LAYER_FORMAT)


def place_on_canvas(image: QImage, size: QSize) -> QImage:
    """A canvas-sized layer image with `image` centred: scaled down (keeping its aspect) when it is
    larger than the canvas, kept pixel for pixel when it fits."""
    if image.isNull():
        raise ValueError("cannot place an empty image")
    if image.width() > size.width() or image.height() > size.height():
        image = image.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    layer = new_image(size)
    painter = QPainter(layer)
    painter.drawImage(QPoint((size.width() - image.width()) // 2, (size.height() - image.height()) // 2), image)
    painter.end()
    return layer


def is_image_path(path: Path) -> bool:
    """Whether Qt can read files with this suffix."""
    supported = {bytes(fmt.data()).decode().lower() for fmt in QImageReader.supportedImageFormats()}
    return path.suffix.lower().lstrip(".") in supported


def mime_images(mime: QMimeData) -> list[Path | QImage]:
    """The pictures a drop or the clipboard offers: local image files, else raw image data."""
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    files: list[Path | QImage] = [path for path in paths if path.is_file() and is_image_path(path)]
    if files:
        return files
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QPixmap):
            image = image.toImage()
        if isinstance(image, QImage) and not image.isNull():
            return [image]
    return []
