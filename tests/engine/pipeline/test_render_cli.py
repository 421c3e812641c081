"""`atelier render`: headless jobs to PNGs with metadata, re-rendering from an image, one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.metadata import read_image_settings
from engine.models.families import Family
from engine.pipeline import engine as engine_module
from studio.cli import main


@pytest.fixture
def tiny_cli(tiny_resources, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The CLI's Engine on the tiny configs (single-file checkpoints need them) and an empty store."""
    real = engine_module.Engine

    class TinyEngine(real):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(resources=tiny_resources, store=engine_module.ModelStore.with_roots([tmp_path / "none"]),
                             **kwargs)

    monkeypatch.setattr(engine_module, "Engine", TinyEngine)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_render_then_rerender_from_the_image_gives_the_same_pixels(tiny_cli, tiny_models, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = shutil.copy(tiny_models[Family.SD1].single_file, tmp_path / "mine.safetensors")
    out = tmp_path / "out.png"
    assert main(["render", "--model", str(model), "--prompt", "a (red:1.2) star", "--negative", "blurry",
                 "--sampler", "euler_ancestral", "--steps", "4", "--seed", "42", "--size", "64x48",
                 "--cfg", "6", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "step 4/4" in captured.err and str(out) in captured.out
    job = read_image_settings(out).job
    assert (job.seed, job.width, job.height, job.prompt) == (42, 64, 48, "a (red:1.2) star")
    again = tmp_path / "again.png"
    assert main(["render", "--from", str(out), "-o", str(again)]) == 0
    assert np.array_equal(_pixels(again), _pixels(out))
    assert _pixels(out).shape == (48, 64, 3) and _pixels(out).std() > 5


def test_render_batch_writes_numbered_files_with_their_own_seeds(tiny_cli, tiny_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "batch.png"
    assert main(["render", "--model", str(tiny_models[Family.SD1].folder), "--steps", "2", "--seed", "5",
                 "--size", "64x64", "--batch", "2", "-o", str(out)]) == 0
    files = [tmp_path / "batch-0001.png", tmp_path / "batch-0002.png"]
    assert not out.exists() and all(f.exists() for f in files)
    assert [read_image_settings(f).job.seed for f in files] == [5, 6]


@pytest.mark.parametrize("case", ["missing model", "truncated model", "unreadable init", "no model"])
def test_bad_input_is_one_clear_line_and_exit_1(tiny_cli, tiny_models, tmp_path, capsys, case) -> None:  # type: ignore[no-untyped-def]
    truncated = tmp_path / "broken.safetensors"
    truncated.write_bytes(tiny_models[Family.SD1].single_file.read_bytes()[:3000])
    bad_png = tmp_path / "init.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    good = str(tiny_models[Family.SD1].folder)
    args = {"missing model": ["--model", str(tmp_path / "gone.safetensors")],
            "truncated model": ["--model", str(truncated)],
            "unreadable init": ["--model", good, "--init", str(bad_png), "--strength", "0.5"],
            "no model": []}[case]
    expected = {"missing model": "gone.safetensors", "truncated model": "broken.safetensors",
                "unreadable init": "init.png", "no model": "no model installed: put a checkpoint in"}[case]
    assert main(["render", *args, "--steps", "2", "--size", "64x64", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("atelier: error:") and expected in err
    assert not (tmp_path / "x.png").exists()
