"""xDR writer against real Redis and PostgreSQL: every billed leg exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest
import redis

from billing.xdr import XdrEvent
from provisioning.migrate import migrate, migration_files
from provisioning.xdr_writer import DEAD_STREAM, GROUP, STREAM, XdrWriter
from tests.servers import PostgresServer, RedisServer, kill_group
from tollgate import metrics_writer as m

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RACHEL, MARK, CARD = "17785551209", "17785551210", "5550001"
# toll tariff: 0.06/min per minute + 0.10 to connect; 1800 toll-free
SEED = """
INSERT INTO customers (name, currency, credit_limit) VALUES ('Smart Calls, Ltd.', 'USD', 100);
INSERT INTO tariffs (name, currency) VALUES ('toll', 'USD');
INSERT INTO rates (tariff_id, prefix, price_first, price_next, interval_first, interval_next,
                   connect_fee) VALUES (1, '1', 0.06, 0.06, 60, 60, 0.10),
                                       (1, '1800', 0, 0, 60, 60, 0);
INSERT INTO products (name, currency) VALUES ('Cloud PBX', 'USD');
INSERT INTO rating_entries (product_id, access_code, tariff_id) VALUES (1, '', 1);
INSERT INTO ids (id, kind) VALUES ('17785551209', 'account'), ('17785551210', 'account'),
                                  ('5550001', 'account');
INSERT INTO accounts (id, customer_id, product_id, billing_model, credit_limit, balance)
VALUES ('17785551209', 1, 1, 'credit', 50, 0), ('17785551210', 1, 1, 'credit', 50, 0),
       ('5550001', 1, 1, 'debit', NULL, 10);
"""


def event(call_id="call-1", account=RACHEL, leg="toll", cld="12125551234", talk="61.5",
          **changes) -> bytes:
    """A leg answered 3 s after setup that lasted `talk` seconds (0: never answered)."""
    setup = D("1795300000.000")
    connect = setup + 3 if D(talk) > 0 else D(0)
    fields = dict(call_id=call_id, session_id="session-" + call_id, leg=leg, account=account,
                  customer_id=1, cli=MARK, cld=cld, access_code="", setup_ts=setup,
                  connect_ts=connect, end_ts=setup + 3 + D(talk), sip_code=200, reason="",
                  node="sip1")
    fields.update(changes)
    return XdrEvent(**fields).encode()


def seeded(dsn: str) -> str:
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED)
    return dsn


@pytest.fixture
def db(pg_dsn):
    return seeded(pg_dsn)


def query(dsn: str, sql: str, *args):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def drain(dsn: str, client: redis.Redis, consumer: str = "test") -> XdrWriter:
    writer = XdrWriter(dsn, client, consumer, block_ms=50)
    writer.run(threading.Event(), until_idle=True)
    return writer


def add(client: redis.Redis, *events: bytes) -> None:
    for packed in events:
        client.xadd(STREAM, {"m": packed})


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def retries(backend: str) -> float:
    """Attempts the writer gave up on and will retry (tollgate_xdr_writer retries metric)."""
    return m.RETRIES.labels(backend)._value.get()


def xdr_count(dsn: str) -> int:
    return query(dsn, "SELECT count(*) FROM xdrs")[0][0]


def test_one_event_one_xdr_one_debit(db, redis_client):
    redis_client.hset("tg:resv:account:" + RACHEL, "call-1", "22000:99999999999999")
    redis_client.hset("tg:resv:customer:1", "call-1", "22000:99999999999999")
    add(redis_client, event())
    drain(db, redis_client)
    # 61.5 s talk -> 62 s -> 2 minutes: 0.10 + 2 x 0.06
    rows = query(db, "SELECT account_id, leg, duration, charged_seconds, amount, currency, "
                     "rate_prefix, customer_id, connect_time - setup_time FROM xdrs")
    assert rows == [(RACHEL, "toll", 62, 120, D("0.22000"), "USD", "1", 1, timedelta(seconds=3))]
    ops = query(db, "SELECT account_id, customer_id, amount, balance_after, xdr_id IS NOT NULL "
                    "FROM balance_operations ORDER BY id")
    assert ops == [(RACHEL, 1, D("0.22000"), D("0.22000"), True),
                   (None, 1, D("0.22000"), D("0.22000"), False)]
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("0.22000"),)]
    assert query(db, "SELECT balance FROM customers") == [(D("0.22000"),)]
    assert redis_client.get("tg:bal:account:" + RACHEL) == b"0.22000"
    assert redis_client.get("tg:bal:customer:1") == b"0.22000"
    assert not redis_client.exists("tg:resv:account:" + RACHEL, "tg:resv:customer:1")
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_debit_account_pays_from_its_balance_only(db, redis_client):
    add(redis_client, event(account=CARD))
    drain(db, redis_client)
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", CARD) == [(D("9.78000"),)]
    assert query(db, "SELECT amount FROM balance_operations") == [(D("-0.22000"),)]
    assert query(db, "SELECT balance FROM customers") == [(D("0.00000"),)]
    assert redis_client.get("tg:bal:account:" + CARD) == b"9.78000"


def test_same_event_twice_one_row_one_debit(db, redis_client):
    add(redis_client, event(), event())
    drain(db, redis_client)
    add(redis_client, event())
    drain(db, redis_client, consumer="other")
    assert xdr_count(db) == 1
    assert query(db, "SELECT count(*), sum(amount) FROM balance_operations "
                     "WHERE account_id IS NOT NULL") == [(1, D("0.22000"))]
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("0.22000"),)]


def test_both_legs_of_the_seed_call(db, redis_client):
    # Mark's IVR leg is unrated here (no IN tariff), Rachel's toll leg is charged
    add(redis_client, event("ivr-1", account=MARK, leg="ivr", cld="8000"),
        event("toll-1", account=RACHEL, session_id="session-ivr-1"))
    drain(db, redis_client)
    rows = query(db, "SELECT account_id, leg, amount, session_id FROM xdrs ORDER BY id")
    assert rows == [(MARK, "ivr", D("0.00000"), "session-ivr-1"),
                    (RACHEL, "toll", D("0.22000"), "session-ivr-1")]


def test_unanswered_onnet_and_free_legs_cost_nothing(db, redis_client):
    add(redis_client, event("c1", talk="0", sip_code=486, reason="Busy Here"),
        event("c2", leg="onnet", cld=MARK), event("c3", cld="18005551234"))
    drain(db, redis_client)
    rows = query(db, "SELECT call_id, duration, amount, connect_time IS NULL FROM xdrs "
                     "ORDER BY call_id")
    assert rows == [("c1", 0, D("0"), True), ("c2", 62, D("0"), False),
                    ("c3", 62, D("0"), False)]
    assert query(db, "SELECT count(*) FROM balance_operations") == [(0,)]


def test_malformed_events_go_to_the_dead_letter_stream(db, redis_client):
    redis_client.xadd(STREAM, {"m": b"\xc1garbage"})
    redis_client.xadd(STREAM, {"other": b"x"})
    add(redis_client, event(account="nobody"), event("good"))
    drain(db, redis_client)
    dead = redis_client.xrange(DEAD_STREAM)
    errors = [fields[b"error"].decode() for _, fields in dead]
    assert len(errors) == 3
    assert errors[0].startswith("XdrError: not msgpack")
    assert errors[1].startswith("XdrError")
    assert "unknown account 'nobody'" in errors[2]
    assert dead[0][1][b"m"] == b"\xc1garbage"
    assert xdr_count(db) == 1
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_writer_starts_before_the_schema_exists(pg_dsn, redis_client, tmp_path):
    add(redis_client, event())
    stop = threading.Event()
    writer = XdrWriter(pg_dsn, redis_client, "early", block_ms=50)
    thread = threading.Thread(target=writer.run, args=(stop,))
    before = retries("postgresql") + retries("internal")
    thread.start()
    try:  # the writer has found no schema and will try again
        wait_for(lambda: retries("postgresql") + retries("internal") > before,
                 what="a failed attempt without the schema")
        # schema and accounts in one transaction: a writer retrying between the two would
        # (rightly) dead-letter the event of an account that does not exist yet
        whole = tmp_path / "0001_schema_and_seed.sql"
        whole.write_text("\n".join(p.read_text() for p in migration_files()) + SEED)
        migrate(pg_dsn, folder=tmp_path)
        wait_for(lambda: xdr_count(pg_dsn) == 1, what="the xDR after migration")
    finally:
        stop.set()
        thread.join(10)
    assert redis_client.xlen(DEAD_STREAM) == 0


@pytest.fixture
def own_pg():
    """A PostgreSQL of its own: this test stops and starts it."""
    server = PostgresServer().start()
    yield server
    server.discard()


def test_postgresql_down_then_up_loses_nothing(own_pg, redis_client):
    dsn = seeded(own_pg.dsn())
    own_pg.stop()
    add(redis_client, *(event(f"c{n}") for n in range(20)))
    stop = threading.Event()
    writer = XdrWriter(dsn, redis_client, "survivor", block_ms=50)
    thread = threading.Thread(target=writer.run, args=(stop,))
    before = retries("postgresql")
    thread.start()
    try:  # several failed attempts, nothing acked meanwhile
        wait_for(lambda: retries("postgresql") >= before + 3, what="three failed attempts")
        assert redis_client.xpending(STREAM, GROUP)["pending"] > 0
        own_pg.start()
        wait_for(lambda: xdr_count(dsn) == 20, what="20 xDRs after PostgreSQL came back")
        wait_for(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, what="acks")
    finally:
        stop.set()
        thread.join(10)
    assert query(dsn, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("4.40000"),)]


def test_redis_restart_is_survived(db):
    server = RedisServer().start()
    client = redis.Redis(port=server.port, socket_timeout=2)
    stop = threading.Event()
    writer = XdrWriter(db, client, "survivor", block_ms=50)
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    try:
        add(client, event("before"))
        wait_for(lambda: xdr_count(db) == 1, what="first xDR")
        before = retries("redis")
        server.stop()
        wait_for(lambda: retries("redis") > before, what="the writer finding Redis gone")
        server.start()  # same port, empty: stream and group are gone
        wait_for(lambda: client.exists(STREAM), what="the group recreated")
        add(client, event("after"))
        wait_for(lambda: xdr_count(db) == 2, what="xDR after the restart")
    finally:
        stop.set()
        thread.join(10)
        server.stop()


def writer_process(dsn: str, redis_port: int, consumer: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TOLLGATE_REDIS_PORT": str(redis_port), "PYTHONPATH": str(ROOT)}
    env.pop("TOLLGATE_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "provisioning.xdr_writer", "--dsn", dsn,
                             "--consumer", consumer, "--block-ms", "100", *args],
                            cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_writer_killed_mid_batch_writes_everything_exactly_once(db, redis_server, redis_client):
    total = 600
    add(redis_client, *(event(f"c{n:04d}", talk=str(n % 300 + 1)) for n in range(total)))
    # batches of 10: sixty commits to go when it is killed, not one or two of 2000
    first = writer_process(db, redis_server.port, "w1", "--batch", "10")
    try:
        wait_for(lambda: xdr_count(db) >= 50, what="the first writer to get going")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(5)
    finally:
        kill_group(first)
    written = xdr_count(db)
    assert written < total, "the writer finished before it could be killed"
    print(f"killed after {written} xDRs with "
          f"{redis_client.xpending(STREAM, GROUP)['pending']} entries pending")
    # a different consumer must take over w1's pending entries once they are idle
    second = writer_process(db, redis_server.port, "w2", "--claim-idle", "0.5", "--until-idle")
    try:
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err.decode()[-2000:]
    finally:
        kill_group(second)
    assert xdr_count(db) == total
    assert query(db, "SELECT count(DISTINCT call_id) FROM xdrs") == [(total,)]
    expected = sum((D("0.10") + D("0.06") * ((n % 300 + 1 + 59) // 60)) for n in range(total))
    assert query(db, "SELECT count(*), sum(amount) FROM balance_operations "
                     "WHERE account_id IS NOT NULL") == [(total, expected)]
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(expected,)]
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_metrics_count_outcomes(db, redis_client):
    from tollgate import metrics_writer as m
    before = (m.PROCESSED._value.get(), m.DUPLICATES._value.get(), m.DEAD._value.get())
    add(redis_client, event(), event(), event(call_id="x"))
    redis_client.xadd(STREAM, {"m": b"junk"})
    drain(db, redis_client)
    after = (m.PROCESSED._value.get(), m.DUPLICATES._value.get(), m.DEAD._value.get())
    assert [a - b for a, b in zip(after, before)] == [2, 1, 1]


def test_a_batch_is_one_transaction_and_redis_gets_the_final_balances(db, redis_client):
    for n in range(30):
        redis_client.hset("tg:resv:account:" + (RACHEL, MARK)[n % 2], f"c{n}",
                          "22000:99999999999999")
        redis_client.hset("tg:resv:customer:1", f"c{n}", "22000:99999999999999")
    add(redis_client, *(event(f"c{n}", account=(RACHEL, MARK)[n % 2]) for n in range(30)),
        event("c0", account=RACHEL))   # a duplicate inside the batch
    drain(db, redis_client)
    assert query(db, "SELECT count(*), count(DISTINCT xmin::text) FROM xdrs") == [(30, 1)]
    assert query(db, "SELECT count(*), sum(amount) FROM balance_operations "
                     "WHERE account_id IS NOT NULL") == [(30, D("6.60000"))]
    # balance_after follows the order of the events: the customer's grows by 0.22 each
    assert query(db, "SELECT balance_after FROM balance_operations WHERE account_id IS NULL "
                     "ORDER BY id DESC LIMIT 1") == [(D("6.60000"),)]
    assert redis_client.get("tg:bal:account:" + RACHEL) == b"3.30000"
    assert redis_client.get("tg:bal:account:" + MARK) == b"3.30000"
    assert redis_client.get("tg:bal:customer:1") == b"6.60000"
    assert not redis_client.exists("tg:resv:account:" + RACHEL, "tg:resv:account:" + MARK,
                                   "tg:resv:customer:1")
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_poison_events_do_not_block_their_batch(db, redis_client):
    redis_client.hset("tg:resv:account:" + CARD, "good-2", "22000:99999999999999")
    add(redis_client, event("good-1", account=CARD), event("nul", account=CARD, cli="a\x00b"),
        event("good-2", account=CARD), event("nobody", account="nobody"),
        event("good-3", account=CARD))
    drain(db, redis_client)
    dead = [fields[b"error"].decode() for _, fields in redis_client.xrange(DEAD_STREAM)]
    assert len(dead) == 2 and dead[0].startswith("DataError")
    assert "unknown account 'nobody'" in dead[1]
    assert query(db, "SELECT call_id FROM xdrs ORDER BY id") == [("good-1",), ("good-2",),
                                                                 ("good-3",)]
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", CARD) == [(D("9.34000"),)]
    assert redis_client.get("tg:bal:account:" + CARD) == b"9.34000"
    assert not redis_client.exists("tg:resv:account:" + CARD)
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_the_first_answered_outgoing_call_marks_the_account_first_use(db, redis_client):
    add(redis_client, event("ivr-1", account=CARD, leg="ivr", talk="30"),
        event("failed-1", account=CARD, talk="0"))
    drain(db, redis_client)
    assert query(db, "SELECT first_use FROM accounts WHERE id = %s", CARD) == [(None,)]
    add(redis_client, event("first", account=CARD), event("second", account=CARD,
                                                         setup_ts=D("1795300100.000"),
                                                         connect_ts=D("1795300103.000"),
                                                         end_ts=D("1795300110.000")))
    drain(db, redis_client)
    (first_use,), = query(db, "SELECT extract(epoch FROM first_use) FROM accounts"
                              " WHERE id = %s", CARD)
    assert D(first_use) == D("1795300003")  # the first call's connect time, kept
