"""Media relay sets (virtual-pbx-client.txt "Media relay set"): rtpengine instances grouped
in named sets, to reserve capacity or keep media in a region. A client's calls use its
set: Kamailio's rtpengine module spreads calls over the set's instances and fails over
inside it, never to another set. Calls of clients without a set use the default set, the
`rtpengine_address`/`rtpengine_ng_port` instance of the settings.

Settings: media_relay_sets = "eu=127.0.0.1:2224 127.0.0.1:2225;us=10.0.0.9:2223" (set
name = one or more ng control addresses, sets separated by ';'). Sets are numbered in that
order from 1 (0 is the default set) for the rtpengine module's rtpengine_sock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tollgate.config import Settings

DEFAULT_SET = 0
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ADDRESS = re.compile(r"[A-Za-z0-9_.:\[\]-]+:\d{1,5}")


@dataclass(frozen=True)
class RelaySet:
    """One set: its rtpengine module set ID, its name and its instances' ng addresses."""
    ident: int
    name: str
    addresses: tuple[str, ...]


def relay_sets(settings: Settings) -> dict[str, RelaySet]:
    """The named sets of the settings, by name; ValueError on a malformed setting."""
    return dict(_parse(settings.media_relay_sets))


@lru_cache(maxsize=8)
def _parse(text: str) -> tuple[tuple[str, RelaySet], ...]:
    sets: dict[str, RelaySet] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, eq, rest = part.partition("=")
        name, addresses = name.strip(), tuple(rest.split())
        if not eq or not _NAME.fullmatch(name) or not addresses or name in sets:
            raise ValueError(f"setting media_relay_sets: {part!r} is not name=host:port ...")
        for address in addresses:
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"setting media_relay_sets: {address!r} is not host:port")
        sets[name] = RelaySet(len(sets) + 1, name, addresses)
    return tuple(sets.items())


def rtpengine_socks(settings: Settings) -> list[str]:
    """The rtpengine module's rtpengine_sock values: the default set, then the named."""
    socks = [f"{DEFAULT_SET} == udp:{settings.rtpengine_address}:{settings.rtpengine_ng_port}"]
    for relay in relay_sets(settings).values():
        socks.append(f"{relay.ident} == " + " ".join(f"udp:{a}" for a in relay.addresses))
    return socks


def set_of(settings: Settings, name: object) -> int | None:
    """The set ID a client's media relay set name uses (none named: the default set);
    None when the name is not a configured set."""
    if not name:
        return DEFAULT_SET
    found = relay_sets(settings).get(str(name))
    return found.ident if found else None


def instances(settings: Settings, ident: int) -> tuple[str, ...]:
    """The ng addresses (host:port) of the rtpengine instances of set `ident` (the
    default set: the settings' own instance); () for a set the settings do not have."""
    if ident == DEFAULT_SET:
        return (f"{settings.rtpengine_address}:{settings.rtpengine_ng_port}",)
    for relay in relay_sets(settings).values():
        if relay.ident == ident:
            return relay.addresses
    return ()
