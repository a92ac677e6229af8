"""A safety net for network-policy tests: no socket in this process may connect outside loopback.

A policy that failed open would otherwise send a test's traffic to a link-local
or metadata address; with the guard the attempt is refused and recorded instead.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest


@pytest.fixture
def loopback_only(monkeypatch) -> list[str]:
    """Addresses something tried to connect to outside 127.0.0.0/8 and ::1 (refused)."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            attempts.append(host)
            raise ConnectionRefusedError(f"test guard: no traffic outside loopback (tried {host})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts
