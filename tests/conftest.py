"""Suite-wide guards: offline hub settings, Qt offscreen, and no network beyond loopback."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


class NetworkAccessError(RuntimeError):
    """Raised when code under test tries to reach a host other than this machine."""


_ATTEMPTS: list[str] = []
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(family: int, address: object, what: str) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_local(host):
        _ATTEMPTS.append(f"{what} {address!r}")
        raise NetworkAccessError(f"tests must not reach the network: {what} {address!r}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_getaddrinfo = socket.getaddrinfo


def _connect(self: socket.socket, address: object) -> None:
    _check(self.family, address, "connect")
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: object) -> int:
    _check(self.family, address, "connect")
    return _real_connect_ex(self, address)


def _sendto(self: socket.socket, data: bytes, *args: object) -> int:
    _check(self.family, args[-1], "sendto")
    return _real_sendto(self, data, *args)


def _getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if host is not None and not _is_local(host if not isinstance(host, bytes) else host.decode()):
        _ATTEMPTS.append(f"resolve {host!r}")
        raise NetworkAccessError(f"tests must not reach the network: resolve {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _sendto  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo


@pytest.fixture(autouse=True)
def _fail_on_network_attempt():
    """Fail a test that tried to reach the network, even if the code swallowed the error."""
    before = len(_ATTEMPTS)
    yield
    attempts = _ATTEMPTS[before:]
    del _ATTEMPTS[before:]
    if attempts:
        pytest.fail("network access attempted: " + "; ".join(attempts), pytrace=False)


@pytest.fixture
def network_attempts() -> list[str]:
    """The attempts recorded by the guard during this test (the guard test clears them)."""
    return _ATTEMPTS
