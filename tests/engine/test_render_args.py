"""`atelier render` flags override the settings they start from, and bad flags say why."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from engine.metadata import save_png
from engine.render_args import add_render_arguments, job_from_args, parse_control, parse_lora
from engine.settings import ControlUnit, Job, LoraRef, SettingsError, save_settings


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_render_arguments(parser)
    return parser.parse_args([*argv, "-o", "out.png"])


def test_flags_override_json(tmp_path: Path) -> None:
    base = Job(prompt="from file", steps=30, cfg_scale=5.0, seed=7)
    path = tmp_path / "job.json"
    save_settings(base, path)
    job = job_from_args(_parse(str(path), "--prompt", "a red star", "--sampler", "Euler a", "--size", "640x384",
                               "--seed", "99", "--control", "canny=edges.png:0.5", "--lora", "ink.safetensors:0.7"))
    assert (job.prompt, job.steps, job.cfg_scale, job.seed) == ("a red star", 30, 5.0, 99)
    assert (job.sampler, job.width, job.height) == ("euler_ancestral", 640, 384)
    assert job.controls == (ControlUnit("canny", "edges.png", weight=0.5),)
    assert job.loras == (LoraRef("ink.safetensors", 0.7),)


def test_from_image_and_old_style_sampler(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    save_png(Image.new("RGB", (8, 8)), img, Job(prompt="kept", seed=3))
    job = job_from_args(_parse("--from", str(img), "--sampler", "DPM++ 2M Karras", "--steps", "8"))
    assert (job.prompt, job.seed, job.sampler, job.schedule, job.steps) == ("kept", 3, "dpmpp_2m", "karras", 8)


@pytest.mark.parametrize(
    ("argv", "error", "fragment"),
    [
        (["--size", "512"], ValueError, "WIDTHxHEIGHT"),
        (["--size", "513x512"], SettingsError, "multiple of 8"),
        (["--sampler", "warp drive"], ValueError, "unknown sampler"),
        (["--steps", "0"], SettingsError, "steps"),
        (["--mask", "m.png"], ValueError, "needs --init"),
        (["--control", "canny"], ValueError, "TYPE=IMAGE"),
        (["--strength", "1.5", "--init", "i.png"], SettingsError, "denoise"),
    ],
)
def test_bad_flags(argv: list[str], error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        job_from_args(_parse(*argv))


def test_weight_suffixes_and_windows_paths() -> None:
    assert parse_lora("C:\\loras\\x.safetensors") == LoraRef("C:\\loras\\x.safetensors", 1.0)
    assert parse_lora("/a/b.safetensors:-0.5") == LoraRef("/a/b.safetensors", -0.5)
    assert parse_control("scribble=/tmp/s.png") == ControlUnit("scribble", "/tmp/s.png")
    with pytest.raises(ValueError, match="bad weight"):
        parse_lora("x.safetensors:1.2.3")
