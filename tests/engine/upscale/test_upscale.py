"""upscale_image and `atelier upscale`: sizes, errors, metadata kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import HELDOUT_SEEDS, make_sample
from engine.metadata import read_image_settings, save_png
from engine.train.sr import bicubic_x4, psnr
from engine.upscale import UPSCALERS, upscale_image
from studio.cli import main
from tests.engine.test_settings import FULL_JOB


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    sample = make_sample(HELDOUT_SEEDS.start + 3, 256, low_size=64)
    assert sample.low_image is not None
    return sample.low_image, sample.image


@pytest.mark.parametrize("name", list(UPSCALERS))
@pytest.mark.parametrize("scale", [1.0, 1.5, 4.0, 5.0])
def test_output_size_is_exact(pair: tuple[np.ndarray, np.ndarray], name: str, scale: float) -> None:
    low = pair[0][:, :37]
    out = upscale_image(low, name, scale, tile=64)
    assert out.shape == (round(64 * scale), round(37 * scale), 3) and out.dtype == np.uint8


def test_builtin_beats_bicubic_on_a_heldout_scene(pair: tuple[np.ndarray, np.ndarray]) -> None:
    low, truth = pair
    ours = upscale_image(low, "atelier-x4", 4, tile=64)
    assert psnr(ours, truth) > psnr(bicubic_x4(low), truth)
    assert psnr(upscale_image(low, "bicubic", 4), truth) == pytest.approx(psnr(bicubic_x4(low), truth))


def test_inputs_are_normalised(pair: tuple[np.ndarray, np.ndarray]) -> None:
    grey = pair[0][:, :, 0]
    assert upscale_image(grey, "lanczos", 2).shape == (128, 128, 3)
    assert upscale_image(grey.astype(np.float32) / 255, "bicubic", 2).shape == (128, 128, 3)


def test_progress_spans_all_passes(pair: tuple[np.ndarray, np.ndarray]) -> None:
    calls: list[tuple[int, int]] = []
    upscale_image(pair[0], "atelier-x4", 8, tile=128, on_tile=lambda d, t: calls.append((d, t)))
    # 64 px: 1 tile; then 256 px: 3 x 3 tiles of 128 px overlapping by >= 32 px
    assert calls == [(i, 10) for i in range(1, 11)]


@pytest.mark.parametrize("name,scale,match", [
    ("nearest", 2, "unknown upscaler 'nearest'; choose one of: lanczos, bicubic, atelier-x4"),
    ("lanczos", 0.5, "must be a finite number >= 1"),
    ("lanczos", float("nan"), "must be a finite number >= 1"),
    ("lanczos", 300, "the largest side allowed is 16384 px"),
])
def test_bad_requests_are_clear_errors(pair: tuple[np.ndarray, np.ndarray], name: str, scale: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        upscale_image(pair[0], name, scale)


def test_cli_keeps_atelier_settings_and_records_the_upscale(tmp_path: Path, pair: tuple[np.ndarray, np.ndarray],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "made.png", tmp_path / "big.png"
    save_png(Image.fromarray(pair[0]), src, FULL_JOB)
    assert main(["upscale", str(src), "--scale", "2", "--tile", "64", "-o", str(out)]) == 0
    assert Image.open(out).size == (128, 128)
    job = read_image_settings(out).job
    assert job.upscale is not None and (job.upscale.upscaler, job.upscale.scale, job.upscale.tile_size) == (
        "atelier-x4", 2.0, 64)
    assert job.prompt == FULL_JOB.prompt
    assert "upscale atelier-x4 x2, tiles: step 1/1" in capsys.readouterr().err


def test_cli_plain_image_gets_no_settings(tmp_path: Path, pair: tuple[np.ndarray, np.ndarray]) -> None:
    src, out = tmp_path / "plain.png", tmp_path / "big.png"
    Image.fromarray(pair[0]).save(src)
    assert main(["upscale", str(src), "--scale", "1.5", "--upscaler", "lanczos", "-o", str(out)]) == 0
    assert Image.open(out).size == (96, 96) and "atelier" not in Image.open(out).info


@pytest.mark.parametrize("extra,message", [
    (["--upscaler", "nearest"], "unknown upscaler 'nearest'"),
    (["--model", "RealESRGAN_x4plus.pth"], "RealESRGAN_x4plus.pth: the upscaler model file does not exist"),
    (["--model", "RealESRGAN_x4plus.pth", "--upscaler", "lanczos"], "either --upscaler NAME or --model FILE, not both"),
    (["--tile", "8"], "tile size must be an integer between 64 and 4096"),
])
def test_cli_bad_input_is_one_line(tmp_path: Path, pair: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str],
                                   extra: list[str], message: str) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(pair[0]).save(src)
    assert main(["upscale", str(src), "--scale", "2", *extra, "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "o.png").exists()


def test_cli_unreadable_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["upscale", str(bad), "--scale", "2", "-o", str(tmp_path / "o.png")]) == 1
    assert "not a readable image" in capsys.readouterr().err


def test_job_json_of_the_output_is_valid(tmp_path: Path, pair: tuple[np.ndarray, np.ndarray]) -> None:
    src, out = tmp_path / "made.png", tmp_path / "big.png"
    save_png(Image.fromarray(pair[0]), src, FULL_JOB)
    assert main(["upscale", str(src), "--scale", "1.5", "--upscaler", "bicubic", "-o", str(out)]) == 0
    assert json.loads(Image.open(out).info["atelier"])["upscale"]["upscaler"] == "bicubic"
