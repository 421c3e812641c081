"""The model store scan, the LRU-by-bytes cache, and the shipped offline resources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.models import (
    Family,
    FileStamp,
    LoadOptions,
    ModelCache,
    ModelKind,
    ModelNotFoundError,
    ModelStore,
    ResourcePaths,
    cached_load_model,
    clip_tokenizer,
    default_models_dir,
    model_cache_key,
)
from engine.models.families import FAMILY_SPECS
from engine.models.resources import read_config

# Parameter counts of the released models, which the shipped configs must reproduce exactly.
REAL_PARAMS = {
    (Family.SD1, "unet"): 859_520_964,
    (Family.SD2, "unet"): 865_910_724,
    (Family.SDXL, "unet"): 2_567_463_684,
    (Family.SD3, "transformer"): 2_243_171_520,  # SD3.5 medium
    (Family.SD1, "vae"): 83_653_863,
    (Family.SD3, "vae"): 83_819_683,
    (Family.SD1, "text_encoder"): 123_060_480,  # CLIP ViT-L/14
    (Family.SD2, "text_encoder"): 340_387_840,  # OpenCLIP ViT-H/14, 23 of 24 layers
    (Family.SDXL, "text_encoder_2"): 694_659_840,  # OpenCLIP ViT-bigG/14 with projection
}


@pytest.mark.parametrize(("family", "component"), list(REAL_PARAMS))
def test_shipped_configs_are_the_full_size_models(family, component) -> None:
    from diffusers import AutoencoderKL, SD3Transformer2DModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = ResourcePaths().component_dir(family, component)
    with torch.device("meta"):
        if component == "unet":
            model = UNet2DConditionModel.from_config(read_config(folder))
        elif component == "transformer":
            model = SD3Transformer2DModel.from_config(read_config(folder))
        elif component == "vae":
            model = AutoencoderKL.from_config(read_config(folder))
        else:
            cls = CLIPTextModelWithProjection if component == "text_encoder_2" else CLIPTextModel
            model = cls(CLIPTextConfig.from_pretrained(str(folder), local_files_only=True))
    assert sum(p.numel() for p in model.parameters()) == REAL_PARAMS[(family, component)]


def test_every_family_has_a_complete_config_folder() -> None:
    res = ResourcePaths()
    for family, spec in FAMILY_SPECS.items():
        index = json.loads((res.family_dir(family) / "model_index.json").read_text())
        assert index["_class_name"] == spec.pipeline_class
        for part in (spec.denoiser, "vae", "scheduler", *spec.text_encoders, *spec.tokenizers):
            assert part in index, (family, part)
            assert res.component_dir(family, part).is_dir()


@pytest.mark.parametrize(("family", "slot", "pad_id"), [(Family.SD1, "tokenizer", 49407), (Family.SDXL, "tokenizer_2", 0)])
def test_shipped_tokenizer_gives_openai_clip_ids(family, slot, pad_id) -> None:
    res = ResourcePaths()
    tok = clip_tokenizer(res.component_dir(family, slot), res.tokenizers / "clip")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    # Ids checked against open_clip's own SimpleTokenizer. The SDXL/SD2 tokenizers register "!" as
    # their pad token, so like diffusers' they split "!!" into pad ids; compare text without "!".
    assert tok("A Photo of a CAT, émigré").input_ids == [49406, 320, 1125, 539, 320, 2368, 267, 3459, 3736, 4166,
                                                        49407]
    padded = tok("cat", padding="max_length", max_length=tok.model_max_length).input_ids
    assert len(padded) == 77 and padded[-1] == pad_id


def test_tokenizer_files_are_small() -> None:
    files = list((ResourcePaths().tokenizers / "clip").iterdir())
    assert sorted(f.name for f in files) == ["merges.txt.gz", "vocab.json.gz"]
    assert sum(f.stat().st_size for f in files) < 1_000_000


class Blob:
    def __init__(self, n: int) -> None:
        self.n = n


def test_cache_evicts_least_recently_used_by_bytes() -> None:
    cache: ModelCache[Blob] = ModelCache(100, size_of=lambda b: b.n)
    loads: list[str] = []

    def loader(name: str, n: int):
        return lambda: (loads.append(name), Blob(n))[1]

    a = cache.get_or_load("a", loader("a", 40))
    cache.get_or_load("b", loader("b", 40))
    assert cache.get_or_load("a", loader("a", 40)) is a  # hit; "a" becomes most recent
    cache.get_or_load("c", loader("c", 40))  # 120 > 100: evicts "b", the least recently used
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.stats().bytes_used == 80 and cache.stats().evictions == 1
    big = cache.get_or_load("big", loader("big", 500))  # larger than the budget: returned, not kept
    assert big.n == 500 and "big" not in cache and "a" in cache
    cache.set_budget(50)
    assert cache.stats().entries == 1 and "c" in cache
    assert loads == ["a", "b", "c", "big"]
    with pytest.raises(ValueError):
        ModelCache(-1, size_of=lambda b: 0)


def test_switching_models_does_not_reload_cached_ones(tiny_models, tiny_resources, monkeypatch) -> None:
    import engine.models.loader as loader

    calls: list[Path] = []
    real = loader.load_model
    monkeypatch.setattr(loader, "load_model", lambda p, o, r: (calls.append(Path(p)), real(p, o, r))[1])
    cache = ModelCache(10**9, size_of=lambda m: m.nbytes)
    sd1, sdxl = tiny_models[Family.SD1].single_file, tiny_models[Family.SDXL].folder
    first = cached_load_model(cache, sd1, resources=tiny_resources)
    cached_load_model(cache, sdxl, resources=tiny_resources)
    assert cached_load_model(cache, sd1, resources=tiny_resources) is first
    assert calls == [sd1, sdxl]
    assert 0 < first.nbytes < cache.stats().bytes_used
    fp16 = model_cache_key(sd1, LoadOptions(dtype=torch.float16), tiny_resources)
    assert fp16 != model_cache_key(sd1, LoadOptions(), tiny_resources)


def test_cache_key_changes_when_the_file_changes(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    before = FileStamp.of(path)
    save_file({"w": torch.zeros(3)}, str(path))
    os.utime(path, ns=(before.mtime_ns + 10**9, before.mtime_ns + 10**9))
    assert FileStamp.of(path) != before
    with pytest.raises(ModelNotFoundError):
        model_cache_key(tmp_path / "gone.safetensors")


def test_store_scans_every_kind_and_reports_problems(tiny_models, tmp_path) -> None:
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "loras").mkdir()
    (root / "checkpoints" / "sd1.safetensors").write_bytes(tiny_models[Family.SD1].single_file.read_bytes())
    os.symlink(tiny_models[Family.SDXL].folder, root / "checkpoints" / "tiny-sdxl")
    save_file(tiny_models[Family.SD3].vae.state_dict(), str(root / "sd3-vae.safetensors"))
    save_file({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 768)},
              str(root / "loras" / "style.safetensors"))
    (root / "broken.safetensors").write_bytes(b"garbage")
    (root / "notes.txt").write_text("not a model")
    result = ModelStore.with_roots([root, tmp_path / "missing"]).scan()
    by_name = {e.name: e for e in result.entries}
    assert set(by_name) == {"checkpoints/sd1", "checkpoints/tiny-sdxl", "sd3-vae", "loras/style"}
    assert by_name["checkpoints/sd1"].family is Family.SD1
    assert by_name["checkpoints/tiny-sdxl"].family is Family.SDXL
    assert by_name["sd3-vae"].kind is ModelKind.VAE
    assert by_name["loras/style"].kind is ModelKind.LORA
    assert result.of_kind(ModelKind.CHECKPOINT, Family.SDXL) == (by_name["checkpoints/tiny-sdxl"],)
    assert result.of_kind(ModelKind.VAE, Family.SD3) == (by_name["sd3-vae"],)
    problems = {p.path.name: p.reason for p in result.problems}
    assert "corrupt or truncated" in problems["broken.safetensors"]
    assert problems["missing"] == "models folder does not exist"


def test_default_roots_are_the_user_and_shipped_models_folders(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    assert default_models_dir() == tmp_path / "models"
    assert ModelStore().roots == (tmp_path / "models", ResourcePaths().models)


def test_engine_models_imports_no_qt() -> None:
    code = "import sys, engine.models; print(sorted(m for m in sys.modules if m.startswith(('PySide', 'PyQt', 'shiboken'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3], env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.stdout.strip() == "[]"
