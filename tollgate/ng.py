"""rtpengine's ng control protocol: bencoded dictionaries over UDP, each request and reply
prefixed by a cookie. A small client for the commands our own processes send (start
recording on a keyed code, the benchmarks' call listings); Kamailio's rtpengine module
speaks it for calls.
"""
from __future__ import annotations

import os
import socket
from itertools import count


def bencode(value: object) -> bytes:
    """int, str, bytes, list and dict (keys sorted, as bencode requires)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(value.items())) + b"e"
    raise TypeError(type(value))


def bdecode(data: bytes, i: int = 0) -> tuple[object, int]:
    """The value at `data[i:]` and the index after it (strings stay bytes, keys str)."""
    kind = data[i:i + 1]
    if kind == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if kind in (b"l", b"d"):
        items: list[object] = []
        i += 1
        while data[i:i + 1] != b"e":
            if i >= len(data):
                raise ValueError("bencode: truncated")
            item, i = bdecode(data, i)
            items.append(item)
        if kind == b"l":
            return items, i + 1
        return {_key(items[k]): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    colon = data.index(b":", i)
    size = int(data[i:colon])
    return data[colon + 1:colon + 1 + size], colon + 1 + size


def _key(raw: object) -> str:
    if not isinstance(raw, bytes):
        raise ValueError("bencode: a dictionary key must be a string")
    return raw.decode(errors="replace")


class Ng:
    """One rtpengine instance's ng port; each call waits up to `timeout` seconds for the
    reply carrying its cookie (TimeoutError when none comes)."""

    def __init__(self, host: str, port: int, timeout: float = 2.0):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self._serial = count(1)

    def __call__(self, command: str, **args: object) -> dict[str, object]:
        cookie = f"{os.getpid()}_{next(self._serial)}".encode()
        self.sock.sendto(cookie + b" " + bencode({"command": command, **args}), self.addr)
        while True:
            reply = self.sock.recv(1 << 20)
            if reply.startswith(cookie + b" "):
                result, _ = bdecode(reply, len(cookie) + 1)
                if not isinstance(result, dict):
                    raise ValueError("ng: the reply is not a dictionary")
                return result

    def close(self) -> None:
        self.sock.close()


def address(text: str) -> tuple[str, int]:
    """host:port of an ng socket ("127.0.0.1:2223")."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
