"""Voice notifications (virtual-pbx-client.txt): a refused caller of a client that has
them on hears why, as early media, then gets the refusal itself.

Kamailio sends the refused INVITE here with the signed X-TG-Notify "<code>;<locution>;
<reason>"; the server answers 183 with media, this app plays the locution once and ends
the call with the refusal's code and reason. The caller hanging up first ends it too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.actions import Action, Hangup, Play

log = logging.getLogger("tollgate.ivr")


@dataclass
class Notice:
    call_id: str
    code: int
    locution: str
    reason: str
    done: bool = False
    early_media = True   # answered 183: the call is never connected, never billed

    def start(self) -> list[Action]:
        log.info("[%s] NOTIFY: %s before %d %s", self.call_id, self.locution, self.code,
                 self.reason)
        return [Play((self.locution,))]

    def on_prompt_done(self) -> list[Action]:
        return self._refuse()

    def on_digit(self, digit: str) -> list[Action]:
        return []

    def on_timer(self, name: str) -> list[Action]:
        return []

    def on_caller_hangup(self) -> list[Action]:
        self.done = True
        return []

    def on_fault(self) -> list[Action]:
        return self._refuse()

    def _refuse(self) -> list[Action]:
        if self.done:
            return []
        self.done = True
        return [Hangup("caller", self.code, self.reason)]
