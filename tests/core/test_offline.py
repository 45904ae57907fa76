"""Offline guarantee: every panel's generation runs with the network refused.

The ``no_network`` fixture patches the socket-level entry points a network attempt goes
through (``socket.socket.connect``/``connect_ex``/``sendto``, ``socket.create_connection``,
``socket.getaddrinfo``, ``socket.gethostbyname``/``gethostbyname_ex``/``gethostbyaddr``) and
``urllib.request.urlopen``, so that each attempt is recorded and raises an ``OSError``, as it
would on a machine with no network. Only internet sockets (AF_INET, AF_INET6, loopback
included) and name lookups are refused: multiprocessing and torch may legitimately use
``socket.socketpair`` or AF_UNIX sockets between local processes, and those stay allowed.
Every name lookup is refused, whatever it asks for.

The generations are core/selftest.py's per-panel checks, so this test and ``easel --self-test``
cannot drift apart. (A C extension calling the OS's ``connect`` directly would bypass these
patches; Easel's engines are torch, numpy and Pillow, which do not.)
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from core.selftest import CHECK_NAMES, PANEL_CHECKS, run_self_test

SHIPPED = Path(__file__).resolve().parents[2] / "weights"
INTERNET = (socket.AF_INET, socket.AF_INET6)


class NetworkRefused(OSError):
    """What a refused network attempt raises inside the test."""


@pytest.fixture
def no_network(monkeypatch) -> list[str]:
    """Refuse (and record) every internet connection and name lookup; returns the record."""
    attempts: list[str] = []

    def refuse(what: str) -> NetworkRefused:
        attempts.append(what)
        return NetworkRefused(f"network access attempted in an offline test: {what}")

    connect, connect_ex, sendto = (socket.socket.connect, socket.socket.connect_ex,
                                   socket.socket.sendto)

    def guarded_connect(self, address):
        if self.family in INTERNET:
            raise refuse(f"socket.connect({address!r})")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if self.family in INTERNET:
            raise refuse(f"socket.connect_ex({address!r})")
        return connect_ex(self, address)

    def guarded_sendto(self, *args):
        if self.family in INTERNET:
            raise refuse(f"socket.sendto(..., {args[-1]!r})")
        return sendto(self, *args)

    def refusing(name: str):
        def fn(*args, **kwargs):
            raise refuse(f"{name}{args!r}")

        return fn

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", guarded_sendto)
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                 "gethostbyaddr"):
        monkeypatch.setattr(socket, name, refusing(f"socket.{name}"))
    monkeypatch.setattr(urllib.request, "urlopen", refusing("urllib.request.urlopen"))
    return attempts


@pytest.fixture(autouse=True)
def _shipped(monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(SHIPPED))
    monkeypatch.delenv("EASEL_DEVICE", raising=False)


def test_the_patch_catches_network_attempts(no_network):
    with pytest.raises(OSError):
        socket.create_connection(("example.invalid", 80))
    with pytest.raises(OSError):
        socket.getaddrinfo("example.invalid", 443)
    with pytest.raises(OSError):
        socket.gethostbyname("example.invalid")
    with pytest.raises(OSError):
        urllib.request.urlopen("http://example.invalid/")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", 9))  # loopback TCP is refused too
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError):
        s.connect_ex(("127.0.0.1", 9))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
        s.sendto(b"x", ("127.0.0.1", 9))
    assert len(no_network) == 7
    assert no_network[0].startswith("socket.create_connection(('example.invalid', 80)")


def test_local_sockets_stay_allowed(no_network):
    a, b = socket.socketpair()  # what multiprocessing and torch use between processes
    with a, b:
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"
    assert no_network == []


def test_every_panel_generates_offline(no_network):
    lines: list[str] = []
    checks = run_self_test("cpu", report=lines.append)
    assert set(PANEL_CHECKS) <= {c.name for c in checks}
    assert [c.name for c in checks] == list(CHECK_NAMES)
    assert [c for c in checks if not c.ok] == [], "\n".join(lines)
    assert no_network == []
