"""Edge and line preprocessors: canny edges, XDoG-style scribbles and line art, all white lines on
black as the canny, scribble and lineart ControlNets read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from engine.control.params import check_params, param
from engine.imaging import to_rgb8
from engine.settings.codec import SettingsError


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 luminance in [0, 1] of any image `to_rgb8` accepts."""
    rgb = to_rgb8(image)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0  # (H, W)


def _blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(grey, (0, 0), sigma) if sigma > 0 else grey


def _as_map(lines: np.ndarray) -> np.ndarray:
    """(H, W) uint8 line strength -> (H, W, 3) uint8 white-on-black map."""
    return np.ascontiguousarray(np.repeat(lines[:, :, None], 3, axis=2))


@dataclass(frozen=True)
class CannyParams:
    """Canny hysteresis thresholds (on 8-bit gradient magnitude) and an optional pre-blur."""

    low: int = param(100, ge=0, le=500, step=1, label="Low threshold", doc="weak edges above this join strong ones")
    high: int = param(200, ge=0, le=500, step=1, label="High threshold", doc="gradients above this start an edge")
    blur: float = param(0.0, ge=0.0, le=10.0, step=0.1, label="Blur sigma", doc="Gaussian blur before; 0 = none")

    def __post_init__(self) -> None:
        check_params(self)
        if self.low > self.high:
            raise SettingsError("low", f"canny thresholds need low <= high, got low={self.low}, high={self.high}")


def canny(image: np.ndarray, params: CannyParams = CannyParams()) -> np.ndarray:
    """Canny edges (Canny 1986) as an (H, W, 3) uint8 white-on-black map."""
    rgb = to_rgb8(image)
    if params.blur > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), params.blur)
    return _as_map(cv2.Canny(rgb, params.low, params.high))  # Canny takes colour: max gradient over channels


@dataclass(frozen=True)
class ScribbleParams:
    """The XDoG-style scribble: Gaussian scales, edge threshold and line thickness."""

    sigma: float = param(0.8, ge=0.3, le=5.0, step=0.1, label="Sigma", doc="scale of the fine Gaussian (px)")
    k: float = param(4.0, ge=1.2, le=20.0, step=0.1, label="Scale ratio", doc="wide Gaussian = k * sigma")
    threshold: float = param(0.05, ge=0.005, le=0.5, step=0.005, label="Threshold",
                             doc="how far (luminance 0-1) the fine blur must fall below the wide one: XDoG's t / (1 + p)")
    thickness: int = param(1, ge=0, le=10, step=1, label="Thickness", doc="lines are grown by this many pixels")

    def __post_init__(self) -> None:
        check_params(self)


def scribble(image: np.ndarray, params: ScribbleParams = ScribbleParams()) -> np.ndarray:
    """Binary scribble lines, white on black: XDoG (Winnemöller et al. 2012) sharpens the image as
    D = (1 + p) G_sigma - p G_k*sigma; a pixel is a line where D falls below the wide local mean
    G_k*sigma, i.e. where (1 + p)(G_sigma - G_k*sigma) < -t. Thresholding against the local mean
    instead of a global level keeps dark flat areas empty, as hand scribbles are; p and t only act
    through t / (1 + p), so that ratio is the one `threshold` parameter. Lines are then thickened."""
    grey = _grey(image)
    fine, wide = _blur(grey, params.sigma), _blur(grey, params.sigma * params.k)
    lines = ((fine - wide) < -params.threshold).astype(np.uint8) * 255  # (H, W), the dark side of edges
    if params.thickness > 0:
        size = 2 * params.thickness + 1
        lines = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return _as_map(lines)


@dataclass(frozen=True)
class LineartParams:
    """Line art by adaptive threshold or by XDoG; which fields apply is said in each doc."""

    method: Literal["adaptive", "xdog"] = param("xdog", label="Method")
    sigma: float = param(0.6, ge=0.0, le=5.0, step=0.1, label="Sigma",
                         doc="adaptive: pre-blur (0 = none); xdog: fine Gaussian, must be > 0")
    block: int = param(15, ge=3, le=255, step=2, label="Block size", doc="adaptive: odd window of the local mean")
    offset: float = param(6.0, ge=0.0, le=64.0, step=0.5, label="Offset",
                          doc="adaptive: how much darker than the local mean (0-255) a line is")
    k: float = param(1.6, ge=1.1, le=10.0, step=0.1, label="Scale ratio", doc="xdog: wide Gaussian = k * sigma")
    sharpen: float = param(20.0, ge=0.0, le=200.0, step=1.0, label="Sharpening p", doc="xdog: DoG gain")
    epsilon: float = param(-0.02, ge=-1.0, le=2.0, step=0.01, label="Epsilon",
                           doc="xdog: the sharpened image is ink below this; < 0 inks edges only, not dark areas")
    phi: float = param(50.0, ge=0.1, le=500.0, step=0.5, label="Phi", doc="xdog: steepness of the soft threshold")

    def __post_init__(self) -> None:
        check_params(self)
        if self.method == "xdog" and self.sigma <= 0:
            raise SettingsError("sigma", f"xdog needs sigma > 0, got {self.sigma}")


def lineart(image: np.ndarray, params: LineartParams = LineartParams()) -> np.ndarray:
    """Line art with the dark lines turned white on black, as lineart ControlNets read it."""
    grey = _grey(image)
    if params.method == "adaptive":
        return _as_map(_adaptive_lines(grey, params))
    return _as_map(_xdog_lines(grey, params))


def _adaptive_lines(grey: np.ndarray, params: LineartParams) -> np.ndarray:
    """Pixels darker than their Gaussian-weighted neighbourhood by more than `offset`, as 255."""
    smooth = np.round(_blur(grey, params.sigma) * 255.0).astype(np.uint8)
    return cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV,
                                 params.block, params.offset)


def _xdog_lines(grey: np.ndarray, params: LineartParams) -> np.ndarray:
    """XDoG (Winnemöller, Kyprianidis and Olsen 2012, eq. 5-6): D = (1 + p) G_sigma - p G_k*sigma,
    T = 1 where D >= eps else 1 + tanh(phi (D - eps)); ink (1 - T) as 0-255."""
    fine, wide = _blur(grey, params.sigma), _blur(grey, params.sigma * params.k)
    sharpened = (1.0 + params.sharpen) * fine - params.sharpen * wide
    ink = np.where(sharpened >= params.epsilon, 0.0, -np.tanh(params.phi * (sharpened - params.epsilon)))
    return np.round(np.clip(ink, 0.0, 1.0) * 255.0).astype(np.uint8)
