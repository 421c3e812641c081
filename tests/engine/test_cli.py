"""The `atelier` command line: help, version and `info` on good and bad images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from engine import __version__
from engine.metadata import save_png
from engine.settings import job_to_dict
from studio.cli import main
from tests.engine.test_metadata import A1111_TXT2IMG
from tests.engine.test_settings import FULL_JOB

ROOT = Path(__file__).resolve().parents[2]


def _atelier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, capture_output=True, text=True)


def test_help_lists_commands() -> None:
    out = _atelier("--help")
    assert out.returncode == 0
    assert "info" in out.stdout and "gui" in out.stdout


def test_version() -> None:
    out = _atelier("--version")
    assert out.stdout.strip() == f"atelier {__version__}"


def test_info_prints_every_settings_field(tmp_path: Path) -> None:
    path = tmp_path / "made by atelier.png"
    save_png(Image.new("RGB", (16, 16), "red"), path, FULL_JOB)
    out = _atelier("info", str(path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == job_to_dict(FULL_JOB)


def test_info_on_a1111_image_maps_and_reports_unmapped(tmp_path: Path, capsys) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", A1111_TXT2IMG)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert main(["info", "--verbose", str(path)]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["source"] == "a1111"
    assert data["settings"]["sampler"] == "dpmpp_2m" and data["settings"]["seed"] == 3520591718
    assert data["unmapped"]["Model hash"] == "7f96a1a9ca"
    assert "not mapped: Model hash" in captured.err


def test_info_on_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for path, fragment in [(bad, "truncated"), (tmp_path / "absent.png", "no such file")]:
        out = _atelier("info", str(path))
        assert out.returncode == 1
        assert out.stderr.startswith("atelier: error:") and fragment in out.stderr
        assert "Traceback" not in out.stderr
