"""Small network helpers shared by the launcher and the tests."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_tcp(host: str, port: int, timeout: float,
             alive: Callable[[], bool] = lambda: True) -> bool:
    """True once something accepts TCP on host:port; False on timeout or when not alive()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.3):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_rtpengine(host: str, port: int, timeout: float = 10) -> bool:
    """True once the rtpengine ng control port answers a ping (Kamailio's rtpengine module
    sets an instance that is silent when it starts aside for a minute)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(b"ping1 d7:command4:pinge", (host, port))
            try:
                if b"pong" in sock.recv(1000):
                    return True
            except OSError:
                pass
    return False
