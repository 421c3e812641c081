"""Where the shipped config skeletons, tokenizer files and bundled models live."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from transformers import CLIPTokenizer

from engine.models.errors import ModelLoadError
from engine.models.families import Family
from engine.paths import RESOURCES_DIR


@dataclass(frozen=True)
class ResourcePaths:
    """Roots of the offline configs (one diffusers-style folder per family) and tokenizer files."""

    configs: Path = RESOURCES_DIR / "configs"
    tokenizers: Path = RESOURCES_DIR / "tokenizers"
    models: Path = RESOURCES_DIR / "models"

    def family_dir(self, family: Family) -> Path:
        """The config folder of a family: model_index.json plus one subfolder per component."""
        return self.configs / family.value

    def component_dir(self, family: Family, component: str) -> Path:
        """The folder holding one component's config (e.g. unet/config.json)."""
        path = self.family_dir(family) / component
        if not path.is_dir():
            raise ModelLoadError(path, f"missing shipped config for {family.value}/{component}")
        return path


def read_config(folder: Path, name: str = "config.json") -> dict:
    """A component's JSON config as a dict."""
    path = folder / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable config ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(path, "config is not a JSON object")
    return data


def _read_gz_text(path: Path) -> str:
    try:
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable tokenizer file ({exc})") from None


def clip_tokenizer(tokenizer_dir: Path, files_dir: Path) -> CLIPTokenizer:
    """A CLIP BPE tokenizer: vocab.json/merges.txt from `tokenizer_dir` when it has them (a
    diffusers folder), else the shipped gzip files in `files_dir`; special tokens and length
    from tokenizer_config.json."""
    conf_path = tokenizer_dir / "tokenizer_config.json"
    conf = read_config(tokenizer_dir, "tokenizer_config.json") if conf_path.is_file() else {}
    specials = {k: conf[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if isinstance(conf.get(k), str)}
    max_len = int(conf.get("model_max_length", 77))
    if max_len > 1_000_000:  # some saved configs carry the "unlimited" sentinel
        max_len = 77
    if (tokenizer_dir / "vocab.json").is_file() and (tokenizer_dir / "merges.txt").is_file():
        # Positional paths: in transformers 5 the vocab_file=/merges_file= keywords are ignored.
        return CLIPTokenizer(str(tokenizer_dir / "vocab.json"), str(tokenizer_dir / "merges.txt"),
                             model_max_length=max_len, **specials)
    try:
        vocab = json.loads(_read_gz_text(files_dir / "vocab.json.gz"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(files_dir / "vocab.json.gz", f"invalid JSON ({exc})") from None
    lines = _read_gz_text(files_dir / "merges.txt.gz").split("\n")
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    return CLIPTokenizer(vocab, merges, model_max_length=max_len, **specials)
