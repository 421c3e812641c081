"""Image metadata: every exported PNG carries A1111 ``parameters`` text and the exact job JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.metadata.a1111 import ParsedParameters, format_parameters, parse_parameters
from engine.metadata.png import MetadataError, png_bytes_with_text, read_png_text
from engine.settings.codec import SettingsError
from engine.settings.files import settings_to_json, write_atomic
from engine.settings.job import Job, job_from_dict

PARAMETERS_KEY = "parameters"
ATELIER_KEY = "atelier"


@dataclass(frozen=True)
class ImageSettings:
    """Settings read from an image: exact for our own PNGs, best effort for other tools'."""

    job: Job
    source: Literal["atelier", "a1111"]
    unmapped: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def metadata_texts(job: Job) -> dict[str, str]:
    """The PNG text chunks that record `job`."""
    return {PARAMETERS_KEY: format_parameters(job), ATELIER_KEY: settings_to_json(job)}


def save_png(image: "PIL.Image.Image", path: Path, job: Job) -> None:  # noqa: F821
    """Write `image` as a PNG carrying the job's metadata, atomically."""
    write_atomic(Path(path), png_bytes_with_text(image, metadata_texts(job)))


def read_image_settings(path: Path) -> ImageSettings:
    """The settings recorded in a PNG; MetadataError when there are none or they are malformed."""
    texts = read_png_text(Path(path))
    if ATELIER_KEY in texts:
        try:
            job = job_from_dict(json.loads(texts[ATELIER_KEY]))
        except json.JSONDecodeError as exc:
            raise MetadataError(str(path), f"'atelier' chunk is not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise MetadataError(str(path), "'atelier' chunk is nested too deeply") from None
        except SettingsError as exc:
            raise MetadataError(str(path), f"'atelier' chunk has invalid settings: {exc}") from None
        return ImageSettings(job=job, source="atelier")
    if PARAMETERS_KEY in texts:
        parsed: ParsedParameters = parse_parameters(texts[PARAMETERS_KEY])
        return ImageSettings(
            job=parsed.job, source="a1111", unmapped=parsed.unmapped, warnings=tuple(parsed.warnings)
        )
    raise MetadataError(str(path), "no generation settings in this image")


__all__ = [
    "ATELIER_KEY",
    "PARAMETERS_KEY",
    "ImageSettings",
    "MetadataError",
    "format_parameters",
    "metadata_texts",
    "parse_parameters",
    "read_image_settings",
    "save_png",
]
