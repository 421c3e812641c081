"""Conversions between QImage and numpy arrays, and small pixel helpers for the canvas."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter

LAYER_FORMAT = QImage.Format.Format_ARGB32_Premultiplied


def new_image(size: QSize, fill: QColor | Qt.GlobalColor = Qt.GlobalColor.transparent) -> QImage:
    """A canvas-format image of `size` filled with one colour."""
    if size.width() <= 0 or size.height() <= 0:
        raise ValueError(f"image size must be positive, got {size.width()}x{size.height()}")
    image = QImage(size, LAYER_FORMAT)
    if image.isNull():
        raise MemoryError(f"could not allocate a {size.width()}x{size.height()} image")
    image.fill(fill)
    return image


def _array_view(image: QImage, channels: int) -> np.ndarray:
    """A writable numpy view (H, W, channels) over the pixels of `image` (which must stay alive)."""
    h, w = image.height(), image.width()
    flat = np.frombuffer(image.bits(), np.uint8, count=image.bytesPerLine() * h)
    return flat.reshape(h, image.bytesPerLine())[:, : w * channels].reshape(h, w, channels)


def qimage_to_rgba(image: QImage) -> np.ndarray:
    """A (H, W, 4) uint8 copy of `image` as straight (not premultiplied) RGBA."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    return _array_view(converted, 4).copy()  # (H, W, 4)


def qimage_to_premultiplied_rgba(image: QImage) -> np.ndarray:
    """A (H, W, 4) uint8 copy of `image` as premultiplied RGBA (RGB is the image over black)."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888_Premultiplied)
    return _array_view(converted, 4).copy()  # (H, W, 4)


def rgba_to_qimage(array: np.ndarray) -> QImage:
    """A canvas-format QImage deep copy of a (H, W, 4) straight RGBA or (H, W, 3) RGB uint8 array."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected shape (H, W, 3) or (H, W, 4), got {array.shape}")
    data = np.ascontiguousarray(array)
    h, w, c = data.shape
    fmt = QImage.Format.Format_RGBA8888 if c == 4 else QImage.Format.Format_RGB888
    wrapped = QImage(data.data, w, h, w * c, fmt)  # borrows `data` until converted below
    return wrapped.convertToFormat(LAYER_FORMAT).copy()


def gray_to_alpha8(array: np.ndarray) -> QImage:
    """A Format_Alpha8 QImage deep copy of a (H, W) uint8 array (coverage for painting)."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = data.shape
    return QImage(data.data, w, h, w, QImage.Format.Format_Alpha8).copy()


def alpha8_view(image: QImage) -> np.ndarray:
    """A writable (H, W) numpy view over a Format_Alpha8 image."""
    if image.format() != QImage.Format.Format_Alpha8:
        raise ValueError(f"expected a Format_Alpha8 image, got {image.format()}")
    return _array_view(image, 1)[:, :, 0]


def argb32_view(image: QImage) -> np.ndarray:
    """A writable (H, W) uint32 view over a canvas-format image: each value is 0xAARRGGBB."""
    if image.format() != LAYER_FORMAT:
        raise ValueError(f"expected a Format_ARGB32_Premultiplied image, got {image.format()}")
    h, w = image.height(), image.width()
    flat = np.frombuffer(image.bits(), np.uint32, count=image.bytesPerLine() // 4 * h)
    return flat.reshape(h, image.bytesPerLine() // 4)[:, :w]


def draw_replace(target: QImage, at: QPoint, source: QImage, source_rect: QRect | None = None) -> None:
    """Copy `source` (or a part of it) into `target` at `at`, replacing pixels (no blending)."""
    painter = QPainter(target)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
    if source_rect is None:
        painter.drawImage(at, source)
    else:
        painter.drawImage(at, source, source_rect)
    painter.end()


def paint_coverage(target: QImage, rect: QRect, coverage: QImage, color: QColor,
                   mode: QPainter.CompositionMode, opacity: float) -> None:
    """Paint `color` through an Alpha8 `coverage` (same size as `target`) inside `rect` onto `target`."""
    colored = QImage(rect.size(), LAYER_FORMAT)
    colored.fill(color)
    painter = QPainter(colored)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
    painter.drawImage(QPoint(0, 0), coverage, rect)
    painter.end()
    painter = QPainter(target)
    painter.setCompositionMode(mode)
    painter.setOpacity(opacity)
    painter.drawImage(rect.topLeft(), colored)
    painter.end()
