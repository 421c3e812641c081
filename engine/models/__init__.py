"""Model files: the store that finds them, detection of kind and family, safe reading, offline
loading into diffusers components, and an LRU cache bounded by memory."""

from engine.models.cache import CacheStats, FileStamp, ModelCache
from engine.models.checkpoint import KeyIndex, read_key_index, read_state_dict
from engine.models.detect import Detection, Layout, ModelKind, detect_path
from engine.models.errors import (
    IncompatibleModelError,
    ModelLoadError,
    ModelNotFoundError,
    UnknownModelError,
    UnsafeCheckpointError,
)
from engine.models.families import FAMILY_SPECS, Family, FamilySpec
from engine.models.loader import (
    LoadedModel,
    LoadOptions,
    cached_load_model,
    load_controlnet,
    load_model,
    load_vae,
    model_cache_key,
)
from engine.models.resources import ResourcePaths, clip_tokenizer
from engine.models.store import ModelEntry, ModelStore, ScanProblem, ScanResult, default_models_dir

__all__ = [
    "FAMILY_SPECS", "CacheStats", "Detection", "Family", "FamilySpec", "FileStamp", "IncompatibleModelError",
    "KeyIndex", "Layout", "LoadOptions", "LoadedModel", "ModelCache", "ModelEntry", "ModelKind", "ModelLoadError",
    "ModelNotFoundError", "ModelStore", "ResourcePaths", "ScanProblem", "ScanResult", "UnknownModelError",
    "UnsafeCheckpointError", "cached_load_model", "clip_tokenizer", "default_models_dir", "detect_path",
    "load_controlnet", "load_model", "load_vae", "model_cache_key", "read_key_index", "read_state_dict",
]
