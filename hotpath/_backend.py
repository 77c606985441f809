"""Redis I/O shared by both RecordCache implementations; none of it is on the hit path."""
from __future__ import annotations

import select
from collections.abc import Callable

import redis
from redis.client import PubSub

# Faults that mean "Redis is not there right now": serve stale records instead of failing.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class RedisBackend:
    """A lazily created client plus a pub/sub subscription to the invalidation channel."""

    def __init__(self, client_or_factory: redis.Redis | Callable[[], redis.Redis], channel: str,
                 gen_key: str):
        self._factory: Callable[[], redis.Redis] | None
        self.client: redis.Redis | None
        # A redis.Redis has no __call__; anything callable is a factory run in the worker.
        if callable(client_or_factory):
            self._factory, self.client = client_or_factory, None
        else:
            self._factory, self.client = None, client_or_factory
        self.channel = channel
        self.gen_key = gen_key
        self.pubsub: PubSub | None = None
        self._poller: select.poll | None = None

    def _client(self) -> redis.Redis:
        """The client, made by the factory on first use."""
        if self.client is None:
            assert self._factory is not None, "__init__ keeps a client or a factory"
            self.client = self._factory()
        return self.client

    def connect(self) -> None:
        """Create the client (first use) and subscribe; raises CONNECTION_ERRORS."""
        client = self._client()
        if self.pubsub is None:
            # redis-py 8 leaves pubsub() unannotated
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
            except BaseException:
                pubsub.close()
                raise
            self.pubsub = pubsub
            self._watch_socket()
            # redis-py makes a broken subscription again by itself, on a new socket (after
            # a Sentinel failover, on the new master): poll(2) must watch that one
            if pubsub.connection is not None:
                pubsub.connection.register_connect_callback(self._watch_socket)

    def _watch_socket(self, *_: object) -> None:
        fd = self.fileno()
        self._poller = select.poll() if fd >= 0 else None
        if self._poller is not None:
            self._poller.register(fd, select.POLLIN)

    def drop_subscription(self) -> None:
        """Forget a broken subscription; the next connect() makes a new one."""
        if self.pubsub is not None:
            if self.pubsub.connection is not None:  # it goes back to the pool
                self.pubsub.connection.deregister_connect_callback(self._watch_socket)
            try:
                self.pubsub.close()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail any way
                pass
            self.pubsub = None
            self._poller = None

    def pending(self) -> bool:
        """Whether drain() may find something: one poll(2) instead of a 12 us get_message()."""
        return self._poller is None or bool(self._poller.poll(0))

    def fileno(self) -> int:
        """The subscription socket, or -1 when redis-py hides it (then drain() always reads)."""
        conn = self.pubsub.connection if self.pubsub is not None else None
        sock = getattr(conn, "_sock", None)
        fd: int = sock.fileno() if sock is not None else -1
        return fd

    def fetch(self, key: str | bytes) -> bytes | str | None:
        """The raw value of a string key, or None when Redis has no such key."""
        return self._client().get(key)

    def generation(self) -> int:
        """The current generation value (0 when the key is missing, e.g. after a Redis restart)."""
        value = self.fetch(self.gen_key)
        return int(value) if value is not None else 0

    def drain(self) -> list[bytes | str]:
        """Keys published since the last call (b"*" = everything), without blocking."""
        assert self.pubsub is not None, "drain() follows a successful connect()"
        keys = []
        # Subscribe confirmations also come back as messages: keep reading until None,
        # otherwise a message buffered behind one would wait for the next socket event.
        while (msg := self.pubsub.get_message(timeout=0.0)) is not None:
            if msg["type"] == "message":
                keys.append(msg["data"])
        return keys
