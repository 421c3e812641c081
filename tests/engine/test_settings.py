"""Job settings: every type round-trips through JSON; bad values name the field."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from engine.settings import (
    JOB_VERSION,
    ControlUnit,
    DetailPass,
    Inpaint,
    Job,
    LoraRef,
    ModelRef,
    SettingsError,
    SettingsFileError,
    Upscale,
    from_dict,
    job_from_dict,
    job_to_dict,
    load_settings,
    save_settings,
    to_dict,
)

FULL_JOB = Job(
    model=ModelRef(name="dreamy-v2", path="/models/dreamy-v2.safetensors", vae="/models/vae.safetensors"),
    prompt="a red star, (detailed:1.2), [blurry]\nsecond line: ünïcødé ✓",
    negative_prompt="lowres, bad hands",
    seed=2**40 + 7,
    variation_seed=99,
    variation_strength=0.25,
    steps=37,
    sampler="dpmpp_2m_sde",
    schedule="exponential",
    cfg_scale=6.5,
    guidance_rescale=0.7,
    autoguidance=1.5,
    clip_skip=2,
    width=768,
    height=1024,
    batch_size=3,
    batch_count=2,
    denoise=0.55,
    init_image="layer:background",
    inpaint=Inpaint(mask="layer:mask", blur=8, only_masked=True, padding=48),
    controls=(
        ControlUnit(type="canny", image="layer:control-1", model="cn-canny", preprocessor="canny",
                    weight=0.8, start=0.1, end=0.9),
        ControlUnit(type="scribble", image="/tmp/s.png"),
    ),
    loras=(LoraRef("/loras/ink.safetensors", 0.6), LoraRef("style", -0.5)),
    upscale=Upscale(upscaler="builtin-sr-x4", scale=4.0, mode="pixel", tile_size=256, denoise=0.3, steps=12),
    detail=(DetailPass(), DetailPass(detector="mediapipe-hands", prompt="a hand", denoise=0.35, working_size=768)),
)

EVERY_TYPE = [
    ModelRef(name="x", path="/p"),
    LoraRef("/a.safetensors", 0.5),
    ControlUnit(type="seg", image="layer:2", weight=1.5, start=0.2, end=0.6),
    Inpaint(mask="m.png", blur=0, only_masked=True, padding=0),
    Upscale(mode="latent", denoise=0.5),
    DetailPass(detector="mediapipe-person", negative_prompt="ugly"),
    FULL_JOB,
    Job(),
]


@pytest.mark.parametrize("obj", EVERY_TYPE, ids=lambda o: type(o).__name__)
def test_every_type_round_trips_through_json(obj) -> None:
    text = json.dumps(to_dict(obj))
    back = from_dict(type(obj), json.loads(text))
    assert back == obj
    assert type(back) is type(obj)


def test_job_dict_carries_version_and_round_trips() -> None:
    data = job_to_dict(FULL_JOB)
    assert data["version"] == JOB_VERSION
    assert data["controls"][0]["weight"] == 0.8
    assert job_from_dict(json.loads(json.dumps(data))) == FULL_JOB


def test_defaults_fill_missing_keys() -> None:
    assert job_from_dict({"version": 1, "prompt": "x"}) == Job(prompt="x")


def _err(data: dict) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        job_from_dict({"version": 1, **data})
    return info.value


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"stepz": 3}, "stepz", "unknown key"),
        ({"steps": "20"}, "steps", "expected an integer"),
        ({"steps": 20.5}, "steps", "expected an integer"),
        ({"steps": True}, "steps", "expected an integer"),
        ({"steps": 0}, "steps", ">= 1"),
        ({"cfg_scale": "7"}, "cfg_scale", "expected a number"),
        ({"cfg_scale": -1}, "cfg_scale", ">= 0"),
        ({"width": 513}, "width", "multiple of 8"),
        ({"height": 100000}, "height", "<= 8192"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"sampler": "dpm_fast"}, "sampler", "valid: euler"),
        ({"schedule": "linear"}, "schedule", "valid: karras"),
        ({"prompt": None}, "prompt", "expected a string, got null"),
        ({"model": "sd15"}, "model", "expected an object"),
        ({"model": {"name": "a", "hash": "x"}}, "model.hash", "unknown key"),
        ({"controls": {}}, "controls", "expected a list"),
        ({"controls": [{"type": "canny"}]}, "controls[0].image", "missing required key"),
        ({"controls": [{"type": "c", "image": "i", "weight": 2.5}]}, "controls[0].weight", "<= 2.0"),
        ({"controls": [{"type": "c", "image": "i", "start": 0.7, "end": 0.3}]}, "controls[0].end", "greater than start"),
        ({"loras": [{"path": "a", "weight": "high"}]}, "loras[0].weight", "expected a number"),
        ({"upscale": {"mode": "magic"}}, "upscale.mode", "'pixel'"),
        ({"upscale": {"tile_size": 8}}, "upscale.tile_size", "between 64"),
        ({"detail": [{"denoise": 1.5}]}, "detail[0].denoise", "<= 1.0"),
        ({"variation_strength": float("nan")}, "variation_strength", "finite"),
        ({"inpaint": {"mask": "m"}}, "inpaint", "needs an init_image"),
    ],
)
def test_bad_values_name_the_field(data: dict, path: str, fragment: str) -> None:
    err = _err(data)
    assert err.path == path
    assert fragment in str(err)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "version: missing"),
        ({"version": 99}, "newer Atelier"),
        ({"version": "1"}, "expected an integer"),
        ({"version": 0}, ">= 1"),
    ],
)
def test_version_is_checked(data: dict, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        job_from_dict(data)


def test_constructing_an_invalid_job_directly_fails() -> None:
    with pytest.raises(SettingsError, match="steps"):
        Job(steps=0)
    with pytest.raises(SettingsError, match="end"):
        ControlUnit(type="canny", image="x", start=0.5, end=0.5)


def test_settings_file_export_import(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    save_settings(FULL_JOB, path)
    assert load_settings(path) == FULL_JOB
    assert not [p for p in tmp_path.iterdir() if p.name != "job.json"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"version": 1, "steps": -5}', "steps: must be >= 1"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["syntax", "list", "binary", "range", "deep"],
)
def test_broken_settings_files_give_clear_errors(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(SettingsFileError, match=fragment) as info:
        load_settings(path)
    assert info.value.path == path


def test_missing_and_huge_settings_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError, match="no such file"):
        load_settings(tmp_path / "absent.json")
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(SettingsFileError, match="too large"):
        load_settings(huge)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_permissions_open_would_give(tmp_path: Path, umask: int) -> None:
    """Exported images, settings and projects are written through a temporary file, which mkstemp makes
    owner-only: the result must instead get 0o666 less the umask, like any file the user saves."""
    from PIL import Image

    from engine.metadata import save_png

    old = os.umask(umask)
    try:
        save_settings(FULL_JOB, tmp_path / "job.json")
        save_png(Image.new("RGB", (8, 8)), tmp_path / "image.png", FULL_JOB)
    finally:
        os.umask(old)
    for name in ("job.json", "image.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwriting_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text("{}")
    path.chmod(0o640)
    save_settings(FULL_JOB, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_settings(path) == FULL_JOB
