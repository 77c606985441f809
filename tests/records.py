"""What the end-to-end scenarios read back: xDRs and balances from PostgreSQL (the system of
record), the xDR stream's progress from Redis, and the stack's Prometheus metrics.

Each read that waits, waits for the event itself (a row present, the stream written out, a
metric reached), with a timeout.
"""
from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal

import psycopg
import redis

from provisioning.xdr_writer import GROUP
from tollgate import keyspace


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               every: float = 0.1) -> None:
    """Poll `predicate` until it holds; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(every)


class Records:
    """xDRs, balances and metrics of one stack (tests.stack.Stack)."""

    def __init__(self, stack):
        self.dsn = stack.pg.dsn()
        self.redis_port = stack.settings.redis_port
        self.metrics_url = f"http://127.0.0.1:{stack.settings.metrics_port}/metrics"

    def redis(self) -> redis.Redis:
        """A client of the stack's Redis."""
        return redis.Redis(port=self.redis_port)

    def query(self, sql: str, *args):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, args).fetchall()

    def xdrs(self, session: str) -> list[tuple]:
        """(leg, account, cld, duration, amount) of a session's xDRs, legs in order."""
        return self.query("SELECT leg, account_id, cld, duration, amount FROM xdrs "
                          "WHERE session_id = %s ORDER BY leg", session)

    def wait_xdrs(self, session: str, count: int, timeout: float = 20) -> list[tuple]:
        """At least `count` xDRs of the session, waiting for them."""
        rows: list[tuple] = []

        def enough() -> bool:
            rows[:] = self.xdrs(session)
            return len(rows) >= count
        try:
            wait_until(enough, timeout, f"{count} xDRs for session {session}", every=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}, have {rows}") from None
        return rows

    def settled_xdrs(self, session: str, count: int, timeout: float = 20) -> list[tuple]:
        """The session's xDRs once `count` are there and the writer has written out every
        event in the stream: what is there then is all there is (no second look later)."""
        self.wait_xdrs(session, count, timeout)
        wait_until(self.written_out, timeout, "the xDR writer emptying the stream")
        return self.xdrs(session)

    def written_out(self) -> bool:
        """True when the writers' group has no event left undelivered or unacknowledged."""
        client = redis.Redis(port=self.redis_port)
        try:
            groups = client.xinfo_groups(keyspace.XDR_STREAM)
            newest = client.xrevrange(keyspace.XDR_STREAM, count=1)
        except redis.RedisError:
            return False
        finally:
            client.close()
        for group in groups:
            if _text(group["name"]) == GROUP:
                # lag counts what is not yet delivered (Redis leaves it out after deletions)
                lag = group.get("lag")
                delivered = lag == 0 if lag is not None else \
                    not newest or _text(group["last-delivered-id"]) == _text(newest[0][0])
                return delivered and group["pending"] == 0
        return False

    def balance(self, account: str) -> Decimal:
        return self.query("SELECT balance FROM accounts WHERE id = %s", account)[0][0]

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics: 'name{labels}' -> value."""
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        return {name: float(value) for name, value in
                (line.rsplit(" ", 1) for line in text.splitlines()
                 if line and not line.startswith("#"))}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
