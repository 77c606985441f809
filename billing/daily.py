"""A virtual PBX client's day: the max daily usage counts external outbound spend since
midnight in the client's timezone (virtual-pbx-client.txt, "Max daily usage").

Pure: the day a moment falls on, for one timezone. The spend of each day is kept by the
xDR writer (PostgreSQL's daily_usage, projected to keyspace.daily_spent); a new day is a
new key, so counters reset at the client's midnight without anyone resetting them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo:
    """The timezone of a client; an unknown name is UTC (provisioning refuses one)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_of(tz: str | None, unix_ts: float) -> str:
    """The client's calendar day (YYYY-MM-DD) at a moment."""
    return datetime.fromtimestamp(unix_ts, timezone.utc).astimezone(zone(tz)).date().isoformat()
