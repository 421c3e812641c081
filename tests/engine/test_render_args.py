"""`atelier render` flags override the settings they start from, and bad flags say why."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from engine.metadata import metadata_texts, read_image_settings, save_png
from engine.render_args import add_render_arguments, job_from_args, parse_control, parse_detail, parse_lora
from engine.settings import ControlUnit, DetailPass, Job, LoraRef, SettingsError, save_settings


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
        (["--detail", "shapes:1.5"], SettingsError, "denoise"),
        (["--detail-prompt", "a star"], ValueError, "need a detail pass"),
        (["--detail-align"], ValueError, "need a detail pass"),
        (["--detail", "a", "--detail", "b", "--detail", "c", "--detail-prompt", "x", "--detail-prompt", "y"],
         ValueError, "given 2 times for 3"),
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


def test_detail_flags_add_passes_at_the_image_size_and_override_recorded_ones(tmp_path: Path) -> None:
    assert parse_detail("shapes:0.5", 128) == DetailPass(detector="shapes", denoise=0.5, working_size=128)
    assert parse_detail("/m/face.onnx", 512) == DetailPass(detector="/m/face.onnx", working_size=512)
    job = job_from_args(_parse("--size", "640x384", "--detail", "mediapipe-face:0.3", "--detail", "mediapipe-hands",
                               "--detail-prompt", "a smiling face", "--detail-prompt", "a hand"))
    assert job.detail == (DetailPass("mediapipe-face", "a smiling face", denoise=0.3, working_size=640),
                          DetailPass("mediapipe-hands", "a hand", working_size=640))
    img = tmp_path / "a.png"
    save_png(Image.new("RGB", (8, 8)), img, job)
    again = job_from_args(_parse("--from", str(img), "--detail-negative", "blurry"))
    assert [(d.detector, d.prompt, d.negative_prompt) for d in again.detail] == [
        ("mediapipe-face", "a smiling face", "blurry"), ("mediapipe-hands", "a hand", "blurry")]
    assert job_from_args(_parse("--from", str(img), "--detail", "shapes")).detail == (
        DetailPass("shapes", working_size=640),)


def test_detail_align_turns_aligned_faces_on_in_every_pass_and_rides_in_the_atelier_chunk(tmp_path: Path) -> None:
    job = job_from_args(_parse("--detail", "mediapipe-face", "--detail", "haar-face:0.5", "--detail-align"))
    assert [(d.detector, d.align_faces) for d in job.detail] == [("mediapipe-face", True), ("haar-face", True)]
    img = tmp_path / "a.png"
    save_png(Image.new("RGB", (8, 8)), img, job)
    assert read_image_settings(img).job == job  # exact through Atelier's own chunk
    assert "align" not in metadata_texts(job)["parameters"].lower()  # ADetailer has no such field
    assert job_from_args(_parse("--from", str(img))).detail == job.detail
    assert not any(d.align_faces for d in job_from_args(_parse("--detail", "mediapipe-face")).detail)
