"""The writer's linger (--linger-ms) against a real Redis: a short read of live xDRs waits
for more before it is billed, so live traffic goes in fewer, larger batches; xDRs that are
already old (a writer catching up) and reads with linger off go at once."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from provisioning.xdr_writer import GROUP, STREAM, XdrWriter
from tests.integration.test_xdr_writer import event, wait_for

pytestmark = pytest.mark.integration

UNUSED_DSN = "postgresql://unused"   # read() never touches PostgreSQL


def reader(client: redis.Redis, linger_ms: int) -> XdrWriter:
    writer = XdrWriter(UNUSED_DSN, client, "linger", block_ms=50, linger_ms=linger_ms)
    writer.ensure_group()
    return writer


def delivered(client: redis.Redis) -> int:
    """Entries the group handed to a consumer and nobody acknowledged yet."""
    return int(client.xpending(STREAM, GROUP)["pending"])


def test_a_short_read_of_live_xdrs_waits_and_takes_what_came_meanwhile(redis_client):
    # a long linger so the second xDR surely lands while the first is held
    writer = reader(redis_client, linger_ms=60_000)
    first = redis_client.xadd(STREAM, {"m": event("linger-1")})
    with ThreadPoolExecutor(1) as pool:
        read = pool.submit(writer.read)
        wait_for(lambda: delivered(redis_client) == 1, 10, "the first xDR read")
        assert not read.done(), "a short read of a fresh xDR went to billing at once"
        second = redis_client.xadd(STREAM, {"m": event("linger-2")})
        writer.stop.set()   # as the writer's shutdown does: the lingering read ends now
        entries = read.result(timeout=70)
    assert [entry_id for entry_id, _ in entries] == [first, second]
    assert delivered(redis_client) == 2


def test_xdrs_older_than_the_linger_are_read_at_once(redis_client):
    writer = reader(redis_client, linger_ms=60_000)
    old = redis_client.xadd(STREAM, {"m": event("linger-old")}, id="1000-1")  # stamped 1970
    entries = run_alone(writer)
    assert [entry_id for entry_id, _ in entries] == [old]


def test_with_linger_off_a_read_goes_at_once(redis_client):
    writer = reader(redis_client, linger_ms=0)
    fresh = redis_client.xadd(STREAM, {"m": event("linger-off")})
    entries = run_alone(writer)
    assert [entry_id for entry_id, _ in entries] == [fresh]


def run_alone(writer: XdrWriter) -> list:
    """writer.read() in a thread; a read that lingers would outlive the 10 s given."""
    done = threading.Event()
    result: list = []

    def read() -> None:
        result.extend(writer.read())
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(10), "the read waited: it lingered over xDRs it should have billed"
    return result
