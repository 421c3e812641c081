"""The engine never loads Qt, and the suite's network guard catches any non-loopback socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import NetworkAccessError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_importing_every_engine_module_loads_no_qt() -> None:
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "qt = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'PySide2'))\n"
        "print(len([n for n in sys.modules if n.startswith('engine')]), qt)\n"
        "sys.exit(1 if qt else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    n_modules = int(out.stdout.split()[0])
    assert n_modules >= 8, out.stdout  # really walked the package


def test_headless_cli_loads_no_qt() -> None:
    code = (
        "import sys\n"
        "from studio.cli import build_parser\n"
        "build_parser()\n"
        "sys.exit(1 if 'PySide6' in sys.modules else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: socket.create_connection(("203.0.113.7", 443), timeout=1),
        lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect(("2001:db8::1", 443, 0, 0)),
        lambda: socket.getaddrinfo("huggingface.co", 443),
        lambda: urllib.request.urlopen("https://huggingface.co/api/models", timeout=1),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53)),
    ],
    ids=["tcp4", "tcp6", "dns", "https", "udp"],
)
def test_network_guard_blocks_remote_hosts(attempt, network_attempts: list[str]) -> None:
    before = len(network_attempts)
    with pytest.raises((NetworkAccessError, OSError)) as info:
        attempt()
    chain = [info.value, getattr(info.value, "reason", None), info.value.__context__]
    assert any(isinstance(e, NetworkAccessError) for e in chain), repr(info.value)
    assert len(network_attempts) > before
    del network_attempts[before:]  # recorded as expected; don't fail this test


def test_network_guard_allows_loopback() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    conn, _ = server.accept()
    client.sendall(b"ping")
    assert conn.recv(4) == b"ping"
    for s in (client, conn, server):
        s.close()
