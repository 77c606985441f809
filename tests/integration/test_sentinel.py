"""Redis Sentinel: a master, two replicas and three sentinels, real processes. The master is
SIGKILLed, a replica promoted, and tollgate's clients (made by tollgate.redis_conn) carry on
against the new master: the directory and its cache, reservations, the xDR emitter and
writer. docs/REDIS_HA.md says what each test here proves."""
from __future__ import annotations

import os
import signal
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import msgpack
import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from billing.money import ACCOUNT
from provisioning import xdr_writer
from provisioning.xdr_writer import STREAM, XdrWriter
from tests.integration.test_xdr_writer import RACHEL, event, query, seeded
from tests.servers import RedisReplica, SentinelSet
from tollgate import keyspace, redis_conn
from tollgate.config import Settings
from tollgate.directory import Directory, fail_fast
from tollgate.reservations import Reservations
from tollgate.xdr_emit import XdrEmitter

pytestmark = pytest.mark.integration

CARD = "5550001"
ACCOUNT_RECORD = {"id": CARD, "customer_id": 1, "billing_model": "debit", "language": "en"}
CUSTOMER_RECORD = {"id": 1, "credit_limit": "100"}


@pytest.fixture
def ha():
    sentinels = SentinelSet(replicas=2).start()
    yield sentinels
    sentinels.stop()


def settings_of(ha: SentinelSet, var: Path) -> Settings:
    return Settings(redis_sentinels=ha.addresses, redis_master_name=ha.name,
                    var_dir=str(var))


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def port_of(client: redis.Redis) -> int:
    """The port of the server a client's pool now sends commands to."""
    conn = client.connection_pool.get_connection()
    try:
        return int(conn.port)
    finally:
        client.connection_pool.release(conn)


def replicated(client: redis.Redis, replicas: int = 2) -> None:
    """Everything written so far is on the replicas (a test's own setup must not be lost)."""
    assert client.wait(replicas, 5000) >= replicas


def test_without_sentinels_a_client_is_the_configured_server(tmp_path):
    client = redis_conn.client(Settings(redis_port=6390, redis_timeout_ms=150), retry=fail_fast())
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["socket_timeout"]) == ("127.0.0.1", 6390, 0.15)
    assert redis_conn.replica_acks(Settings()) == 0
    assert redis_conn.sentinel_addresses(" a:1, 10.0.0.2:26379 ,") == [("a", 1),
                                                                        ("10.0.0.2", 26379)]
    with pytest.raises(ValueError, match="host:port"):
        redis_conn.sentinel_addresses("a:1,b")


def test_with_sentinels_a_client_keeps_its_timeouts_and_retries():
    """Through Sentinel, Kamailio's clients still fail fast and the writer's still outlast
    its blocking read, with redis-py's default retries as without Sentinel."""
    settings = Settings(redis_sentinels="127.0.0.1:1,127.0.0.1:2", redis_timeout_ms=150)
    fast = redis_conn.client(settings, retry=fail_fast(), health_check_interval=0)
    assert isinstance(fast.connection_pool, SentinelConnectionPool)
    kwargs = fast.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"],
            kwargs["retry"].get_retries(), kwargs["health_check_interval"]) == (0.15, 0.15, 2, 0)
    through, direct = (xdr_writer.redis_client(s, 1000).connection_pool.connection_kwargs
                       for s in (settings, Settings()))
    for name in ("socket_timeout", "socket_connect_timeout", "health_check_interval", "db"):
        assert through[name] == direct[name], name
    assert through["retry"].get_retries() == direct["retry"].get_retries()
    assert redis_conn.replica_acks(settings) == 1


def test_an_event_no_replica_took_is_spooled_until_one_does(tmp_path):
    """The emitter's side of "no xDR lost": an event a replica acknowledged is done; one it
    did not (a frozen replica) is also kept in the spool, which is sent once a replica is
    in sync again and not before."""
    master = RedisReplica(None).start()
    replica = RedisReplica(master.port).start()
    try:
        client = redis.Redis(port=master.port, socket_timeout=2)
        wait_for(lambda: client.wait(1, 100) == 1, what="the replica in sync")
        # a wait long enough that a busy machine's replica acknowledges in time; a frozen one
        # never does, however long the wait
        emitter = XdrEmitter(client, tmp_path / "spool", replicas=1, wait_ms=1000)
        assert emitter.emit(b"safe") and (emitter.unreplicated, emitter.spooled) == (0, 0)
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            assert emitter.emit(b"alone-1") and emitter.emit(b"alone-2")
            assert (emitter.unreplicated, emitter.spooled) == (2, 2)
            assert emitter.replay() == 0  # no replica to take the copies yet: kept
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        sent: list[int] = []
        wait_for(lambda: sent.append(emitter.replay()) or sum(sent) == 2,
                 what="the spooled copies sent once the replica is back")
        assert emitter.replay() == 0
        # the stream holds both copies of each: the writer bills a leg once (UNIQUE)
        assert [f[b"m"] for _, f in client.xrange(STREAM)] == [
            b"safe", b"alone-1", b"alone-2", b"alone-1", b"alone-2"]
    finally:
        replica.stop()
        master.stop()


def test_directory_and_reservations_follow_a_failover(ha, tmp_path):
    settings = settings_of(ha, tmp_path)
    admin = redis_conn.client(settings)
    admin.set(keyspace.account(CARD), msgpack.packb(ACCOUNT_RECORD))
    admin.set(keyspace.customer(1), msgpack.packb(CUSTOMER_RECORD))
    admin.set(keyspace.balance("account", CARD), "10.00000")
    directory = Directory.from_settings(settings)
    holds = Reservations(directory.client)
    assert directory.account(CARD) == ACCOUNT_RECORD
    directory.poll()  # subscribed to invalidations
    assert holds.reserve("call-before", D("1"), ACCOUNT_RECORD, CUSTOMER_RECORD, 600).ok
    # a provisioning write whose message never reaches us (it was in flight at the
    # failover): only the generation counter tells the cache it missed something
    missed = {**ACCOUNT_RECORD, "language": "de"}
    admin.set(keyspace.account(CARD), msgpack.packb(missed))
    admin.incr(keyspace.GENERATION)
    replicated(admin)
    old = port_of(directory.client)

    assert ha.kill_master() == old
    new = ha.wait_failover(old)

    # the very next command after the switch authorizes, on the new master
    after = holds.reserve("call-after", D("1"), ACCOUNT_RECORD, CUSTOMER_RECORD, 600)
    assert after.ok and after.reserved == D("1")
    assert port_of(directory.client) == new
    assert holds.held(ACCOUNT, CARD) == D("2")  # the hold from before the failover is there
    # the cache resyncs through the generation counter ...
    wait_for(lambda: directory.poll() is None and directory.account(CARD) == missed,
             what="the cache to drop what it missed at the failover")
    # ... and its subscription moved: once it is on the new master, one change published
    # there reaches it (no generation change: only the message can tell it)
    wait_for(lambda: directory.poll() is None and
             dict(admin.pubsub_numsub(keyspace.INVALIDATE)).get(
                 keyspace.INVALIDATE.encode(), 0) >= 1,
             what="the cache subscribed on the new master")
    changed = {**ACCOUNT_RECORD, "language": "fr"}
    admin.set(keyspace.account(CARD), msgpack.packb(changed))
    admin.publish(keyspace.INVALIDATE, keyspace.account(CARD))
    wait_for(lambda: directory.poll() is None and directory.account(CARD) == changed,
             what="the invalidation published on the new master")


def test_the_writer_bills_every_event_once_across_a_failover(ha, pg_dsn, tmp_path):
    """Events emitted before the failover (acknowledged by a replica), one that only the
    old master held (its replication links were cut: WAIT fell short, so it was also
    spooled), and events emitted after it: all billed, each once."""
    db = seeded(pg_dsn)
    settings = settings_of(ha, tmp_path)
    emitter = XdrEmitter(redis_conn.client(settings, timeout=5, retry=fail_fast()),
                         tmp_path / "spool",
                         replicas=redis_conn.replica_acks(settings),
                         wait_ms=1000)  # a busy machine's replica acknowledges in time
    writer = XdrWriter(db, xdr_writer.redis_client(settings, 100), "w1", block_ms=100)
    stop = threading.Event()
    running = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    running.start()
    try:
        before = [event(f"before-{n}", account=RACHEL, talk="10") for n in range(20)]
        assert all(emitter.emit(packed) for packed in before)
        assert emitter.unreplicated == 0 and emitter.spooled == 0

        # the replication links break (frozen replicas cannot come back): the next event
        # reaches the master alone
        for replica in ha.replicas:
            os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            redis.Redis(port=ha.master_port()).client_kill_filter(_type="replica")
            lonely = event("lonely", account=RACHEL, talk="10")
            assert emitter.emit(lonely)
            assert emitter.unreplicated == 1 and emitter.spooled == 1
            old = ha.kill_master()
        finally:
            for replica in ha.replicas:
                os.kill(replica.proc.pid, signal.SIGCONT)
        new = ha.wait_failover(old)
        emitter.wait_ms = settings.redis_replica_wait_ms  # as deployed: spooled if slow
        fresh = redis.Redis(port=new)
        # the promoted replica never saw it: only the spooled copy can bill it
        assert lonely not in [f[b"m"] for _, f in fresh.xrange(STREAM)]

        after = [event(f"after-{n}", account=RACHEL, talk="10") for n in range(20)]
        for packed in after:
            emitter.emit(packed)  # the first may meet the dead master: spooled, not lost

        def spool_sent() -> bool:
            emitter.replay()
            spool = list((tmp_path / "spool").glob("*.spool"))
            return all(path.stat().st_size == 0 for path in spool)
        wait_for(spool_sent, 60, "the spool to be sent once a replica takes it")
        wait_for(lambda: query(db, "SELECT count(*) FROM xdrs")[0][0] == 41, 60,
                 "every event to be billed")
    finally:
        stop.set()
        running.join(30)
    rows = query(db, "SELECT call_id, count(*) FROM xdrs GROUP BY call_id")
    assert sorted(c for c, _ in rows) == sorted(
        [f"before-{n}" for n in range(20)] + ["lonely"] + [f"after-{n}" for n in range(20)])
    assert {n for _, n in rows} == {1}
    # every debit matches an xDR: the account's balance is the sum of what was billed
    (total,), = query(db, "SELECT sum(amount) FROM xdrs")
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(total,)]
    assert query(db, "SELECT count(*) FROM balance_operations WHERE account_id = %s",
                 RACHEL) == [(41,)]
