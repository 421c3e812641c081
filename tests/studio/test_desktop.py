"""The Linux desktop entry, project MIME type and icons that `atelier install-desktop` installs for the
current user, checked in a temporary XDG data folder with the freedesktop tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio import cli, desktop


def _fake_atelier(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "atelier"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def _validate(entry: Path) -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate (desktop-file-utils) is not installed")
    done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_exec_argument_quotes_as_the_spec_says() -> None:
    assert desktop.exec_argument(Path("/opt/atelier/atelier")) == "/opt/atelier/atelier"
    assert desktop.exec_argument(Path("/home/me/My Apps/atelier")) == '"/home/me/My Apps/atelier"'
    # quoting escapes $ as \$, then the file's string escaping doubles the backslash
    assert desktop.exec_argument(Path("/a b/$x/atelier")) == '"/a b/\\\\$x/atelier"'
    assert desktop.exec_argument(Path("/100%/atelier")) == "/100%%/atelier"
    with pytest.raises(ValueError, match="line break"):
        desktop.exec_argument(Path("/a\nb/atelier"))


@pytest.mark.parametrize("folder", ["bin", "My Apps/$HOME's (copy)"])
def test_install_writes_a_valid_entry_type_and_icons(tmp_path: Path, folder: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    exe = _fake_atelier(tmp_path / folder)
    share = tmp_path / "share"
    assert cli.main(["install-desktop", "--exec", str(exe), "--data-home", str(share)]) == 0
    assert f"starts {exe}" in capsys.readouterr().out
    entry = share / "applications" / "atelier.desktop"
    text = entry.read_text()
    assert f"Exec={desktop.exec_argument(exe)} %f" in text.splitlines()
    assert "MimeType=application/x-atelier-project;image/png;" in text.splitlines()
    assert "Icon=atelier" in text.splitlines()
    _validate(entry)
    for size in ("16x16", "48x48", "256x256", "512x512"):
        assert (share / "icons" / "hicolor" / size / "apps" / "atelier.png").is_file()
        assert (share / "icons" / "hicolor" / size / "mimetypes" / "application-x-atelier-project.png").is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "atelier.svg").is_file()
    assert (share / "mime" / "packages" / "atelier.xml").is_file()


@pytest.mark.skipif(shutil.which("update-mime-database") is None or shutil.which("update-desktop-database") is None,
                    reason="shared-mime-info / desktop-file-utils are not installed")
def test_install_registers_the_project_type_and_open_with(tmp_path: Path) -> None:
    share = tmp_path / "share"
    desktop.install(_fake_atelier(tmp_path / "bin"), share)
    assert desktop.refresh_caches(share) == []
    assert "application/x-atelier-project:*.atelier" in (share / "mime" / "globs2").read_text()
    assert "application/zip" in (share / "mime" / "application" / "x-atelier-project.xml").read_text() \
        or "application/x-atelier-project application/zip" in (share / "mime" / "subclasses").read_text()
    cache = (share / "applications" / "mimeinfo.cache").read_text().splitlines()
    assert "application/x-atelier-project=atelier.desktop;" in cache and "image/png=atelier.desktop;" in cache
    desktop.uninstall(share)
    desktop.refresh_caches(share)
    assert "atelier" not in (share / "mime" / "globs2").read_text()
    assert "atelier.desktop" not in (share / "applications" / "mimeinfo.cache").read_text()


def test_uninstall_removes_every_installed_file(tmp_path: Path) -> None:
    share = tmp_path / "share"
    written = desktop.install(_fake_atelier(tmp_path / "bin"), share)
    assert all(p.is_file() for p in written)
    assert cli.main(["uninstall-desktop", "--data-home", str(share)]) == 0
    assert not [p for p in share.rglob("*") if p.is_file() and "atelier" in p.name]
    assert desktop.uninstall(share) == []


def test_a_missing_executable_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["install-desktop", "--exec", str(tmp_path / "nope"), "--data-home", str(tmp_path)]) == 1
    assert "nope: not an executable file" in capsys.readouterr().err
    assert not (tmp_path / "applications").exists()


def test_the_entry_starts_the_running_atelier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_atelier(tmp_path / "venv" / "bin")
    monkeypatch.setattr(sys, "argv", [str(exe), "install-desktop"])
    assert desktop.running_executable() == exe
    bundle = _fake_atelier(tmp_path / "dist" / "atelier")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle))
    assert desktop.running_executable() == bundle


def test_data_home_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert desktop.data_home() == tmp_path
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the spec: relative paths are invalid
    assert desktop.data_home() == Path.home() / ".local" / "share"
