"""The one place Redis clients are made from settings (docs/REDIS_HA.md).

Without redis_sentinels a client talks to redis_host:redis_port, as always. With them it
talks to the master the sentinels name for redis_master_name: redis-py asks them each time
it opens a connection, and drops a connection that finds the old master gone (killed) or
demoted (READONLY), so the next command after a failover goes to the new master.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from tollgate.config import Settings

# the retry policy redis.Redis gives a client made without one; a Sentinel pool's
# connections would get none at all
_DEFAULT_RETRY = inspect.signature(redis.Redis).parameters["retry"].default


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """"host:port,host:port" as (host, port) pairs; ValueError names a malformed entry."""
    found = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"setting redis_sentinels: {item!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return found


def uses_sentinel(settings: Settings) -> bool:
    return bool(sentinel_addresses(settings.redis_sentinels))


def client(settings: Settings, *, timeout: float | None = None,
           connect_timeout: float | None = None, **options: Any) -> redis.Redis:
    """A client of the Redis master. Socket timeouts default to redis_timeout_ms; `options`
    are redis.Redis keywords (retry, health_check_interval, ...) kept as the caller gives
    them, through Sentinel too."""
    short = settings.redis_timeout_ms / 1000
    kwargs: dict[str, Any] = {
        "db": settings.redis_db,
        "socket_timeout": short if timeout is None else timeout,
        "socket_connect_timeout": short if connect_timeout is None else connect_timeout,
        **options}
    sentinels = sentinel_addresses(settings.redis_sentinels)
    if not sentinels:
        return redis.Redis(host=settings.redis_host, port=settings.redis_port, **kwargs)
    # The sentinels are asked only when a connection opens, one after the other until
    # one names a master that is up: each gets the short timeout and a single try (the
    # default retries would hold a worker for seconds on a dead sentinel).
    if "retry" not in options:
        kwargs["retry"] = copy.deepcopy(_DEFAULT_RETRY)
    manager = Sentinel(sentinels, sentinel_kwargs={  # type: ignore[no-untyped-call]
        "socket_timeout": short, "socket_connect_timeout": short,
        "retry": Retry(NoBackoff(), 0)})
    master: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        settings.redis_master_name, **kwargs)
    return master


def replica_acks(settings: Settings) -> int:
    """Replicas that must hold an xDR event before the emitter counts it as safe: the
    setting with Sentinel (a failover promotes a replica), 0 without (no one to wait for)."""
    return max(0, settings.redis_replica_acks) if uses_sentinel(settings) else 0
