"""A fake KSR for unit tests of single route steps (never proof that routing works).

It records replies, header changes and flags; pv values come from a dict the test fills.
"""
from __future__ import annotations

import sys
import types


class FakeKSR(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("KSR")
        self.pvs: dict[str, object] = {}
        self.replies: list[tuple[int, str]] = []
        self.removed: list[str] = []
        self.appended: list[str] = []
        self.flags: set[int] = set()
        self.logs: list[str] = []
        self.pv = types.SimpleNamespace(get=self.pvs.get, sets=self.pvs.__setitem__,
                                        seti=self.pvs.__setitem__)
        self.hdr = types.SimpleNamespace(remove=self.removed.append, append=self.appended.append,
                                         append_to_reply=self.appended.append)
        self.sl = types.SimpleNamespace(sl_send_reply=self._reply, send_reply=self._reply)
        for level in ("info", "warn", "err", "dbg"):
            setattr(self, level, self.logs.append)

    def _reply(self, code: int, reason: str) -> int:
        self.replies.append((code, reason))
        return 1

    def setflag(self, flag: int) -> int:
        self.flags.add(flag)
        return 1

    def isflagset(self, flag: int) -> bool:
        return flag in self.flags


def install() -> FakeKSR:
    """Put a fresh fake KSR in sys.modules (and into modules that imported one)."""
    fake = FakeKSR()
    sys.modules["KSR"] = fake
    for name, module in list(sys.modules.items()):
        if name.startswith("kemi.") and hasattr(module, "KSR"):
            module.KSR = fake
    return fake
