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
