"""Job settings: typed frozen dataclasses, their strict JSON codec, and settings files."""

from engine.settings.codec import SettingsError, from_dict, to_dict
from engine.settings.files import (
    SettingsFileError,
    load_settings,
    save_settings,
    settings_from_json,
    settings_to_json,
)
from engine.settings.job import (
    JOB_VERSION,
    ControlUnit,
    DetailPass,
    Inpaint,
    Job,
    LoraRef,
    ModelRef,
    Upscale,
    job_from_dict,
    job_to_dict,
)

__all__ = [
    "JOB_VERSION",
    "ControlUnit",
    "DetailPass",
    "Inpaint",
    "Job",
    "LoraRef",
    "ModelRef",
    "SettingsError",
    "SettingsFileError",
    "Upscale",
    "from_dict",
    "job_from_dict",
    "job_to_dict",
    "load_settings",
    "save_settings",
    "settings_from_json",
    "settings_to_json",
    "to_dict",
]
