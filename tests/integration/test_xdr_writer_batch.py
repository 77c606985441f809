"""The batched xDR writer against real Redis and PostgreSQL: still every billed leg exactly
once, with big batches, a crash between commit and XACK, and several writers in one group."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D

import psycopg
import pytest
import redis

from billing.xdr import decode
from provisioning import loader
from provisioning.migrate import migrate
from provisioning.xdr_batch import BatchBiller
from provisioning.xdr_writer import DEAD_STREAM, GROUP, STREAM, XdrWriter, bill_batch
from tests.integration.test_xdr_writer import add, event, query, wait_for, writer_process
from tests.servers import kill_group
from tollgate import keyspace
from tollgate import metrics_writer as m

pytestmark = pytest.mark.integration

# two clients; 'toll' rates 1 (0.06/min + 0.10), 44 (0.30/min by the second), 1800 free;
# 'in' rates everything at 0.01/min under the IN access code. Accounts d<n> are debit
# (100.00 each), c<n> credit; c<n> and d<n> with even n belong to client 1, odd to client 2
SEED = """
INSERT INTO customers (name, currency, timezone, max_daily_usage)
VALUES ('One', 'USD', 'America/Vancouver', NULL), ('Two', 'EUR', 'UTC', 1000);
INSERT INTO tariffs (name, currency) VALUES ('toll', 'USD'), ('in', 'USD');
INSERT INTO rates (tariff_id, prefix, price_first, price_next, interval_first, interval_next,
                   connect_fee) VALUES (1, '1', 0.06, 0.06, 60, 60, 0.10),
                                       (1, '1800', 0, 0, 60, 60, 0),
                                       (1, '44', 0.30, 0.30, 1, 1, 0),
                                       (2, '', 0.01, 0.01, 60, 60, 0);
INSERT INTO products (name, currency) VALUES ('PBX', 'USD');
INSERT INTO rating_entries (product_id, access_code, tariff_id) VALUES (1, '', 1), (1, 'IN', 2);
INSERT INTO ids (id, kind) SELECT p || g, 'account' FROM generate_series(0, ACCOUNTS - 1) g,
                                                         unnest(ARRAY['c', 'd']) p;
INSERT INTO accounts (id, customer_id, product_id, billing_model, balance)
SELECT p || g, 1 + g % 2, 1, CASE p WHEN 'd' THEN 'debit' ELSE 'credit' END,
       CASE p WHEN 'd' THEN 100 ELSE 0 END
  FROM generate_series(0, ACCOUNTS - 1) g, unnest(ARRAY['c', 'd']) p;
"""


def seeded(dsn: str, accounts: int = 20) -> str:
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED.replace("ACCOUNTS", str(int(accounts))))
    return dsn


@pytest.fixture
def db(pg_dsn):
    return seeded(pg_dsn)


def mixed(count: int, accounts: int = 20, start: int = 0) -> list[bytes]:
    """Legs of every kind: toll/out to 1 and 44, free 1800, on-net, IN-rated in and ivr
    legs, one in five unanswered, on debit and credit accounts of both clients."""
    kinds = [("toll", "12125551234", ""), ("out", "442071234567", ""),
             ("out", "18005551234", ""), ("onnet", "c1", ""), ("in", "17785551209", "IN"),
             ("ivr", "8000", "IN"), ("toll", "4420712", "")]
    out = []
    for n in range(start, start + count):
        leg, cld, code = kinds[n % len(kinds)]
        account = f"{'cd'[n % 2]}{(n // 2) % accounts}"
        out.append(event(f"call-{n}", account=account, leg=leg, cld=cld, access_code=code,
                         customer_id=0, talk="0" if n % 5 == 3 else str(1 + n % 250)))
    return out


def totals(dsn: str) -> dict[str, object]:
    """What the money invariants are checked on."""
    return {
        "xdrs": query(dsn, "SELECT count(*), count(DISTINCT (call_id, leg, account_id)),"
                           " sum(amount) FROM xdrs")[0],
        "charged": query(dsn, "SELECT count(*) FROM xdrs WHERE amount > 0")[0][0],
        "operations": query(dsn, "SELECT count(*), sum(abs(amount)) FROM balance_operations"
                                 " WHERE account_id IS NOT NULL")[0],
        # debit accounts started at 100: what they lost plus what credit accounts owe
        "balances": query(dsn, "SELECT sum(CASE billing_model WHEN 'debit' THEN 100 - balance"
                               " ELSE balance END) FROM accounts")[0][0],
        "owed": query(dsn, "SELECT sum(balance) FROM customers")[0][0],
        "credit_xdrs": query(dsn, "SELECT coalesce(sum(x.amount), 0) FROM xdrs x JOIN accounts"
                                  " a ON a.id = x.account_id WHERE a.billing_model = 'credit'"
                             )[0][0],
    }


def assert_exactly_once(dsn: str, legs: int) -> None:
    found = totals(dsn)
    count, distinct, amount = found["xdrs"]
    assert count == distinct == legs
    assert found["operations"] == (found["charged"], amount)
    assert found["balances"] == amount
    assert found["owed"] == found["credit_xdrs"]
    # every charged xDR has its one debit, and each balance ends where its last operation says
    assert query(dsn, "SELECT count(*) FROM xdrs x WHERE x.amount > 0 AND (SELECT count(*)"
                      " FROM balance_operations b WHERE b.xdr_id = x.id) <> 1") == [(0,)]
    assert query(dsn, "SELECT count(*) FROM accounts a WHERE EXISTS (SELECT 1 FROM"
                      " balance_operations b WHERE b.account_id = a.id) AND a.balance <>"
                      " (SELECT b.balance_after FROM balance_operations b WHERE b.account_id ="
                      " a.id ORDER BY b.id DESC LIMIT 1)") == [(0,)]


def drain(dsn: str, client: redis.Redis, consumer: str = "test", **options) -> XdrWriter:
    writer = XdrWriter(dsn, client, consumer, block_ms=50, **options)
    writer.run(threading.Event(), until_idle=True)
    return writer


def test_a_batch_bills_what_per_event_sql_bills(pg_server):
    """The batch (in-memory rating, COPY, summed updates) and the per-event SQL it
    replaced write the same xDRs, operations, balances and days, repeats included."""
    events = [decode(raw) for raw in mixed(300)]
    events += events[:40]          # redelivered inside the batch
    one, other = (seeded(pg_server.fresh_database(name)) for name in ("batch_ref", "batch_new"))
    with psycopg.connect(one, autocommit=True) as conn:
        reference = bill_batch(conn, events)
    with psycopg.connect(other, autocommit=True) as conn:
        billed = BatchBiller().bill(conn, events)
    assert None not in billed
    assert [(b.xdr_id is None, b.amount, b.day, b.spent_today, b.reached)
            for b in billed if b is not None] == [
        (r.xdr_id is None, r.amount, r.day, r.spent_today, r.reached) for r in reference]
    for sql in ("SELECT session_id, call_id, leg, account_id, customer_id, cli, cld,"
                " access_code, setup_time, connect_time, disconnect_time, duration,"
                " charged_seconds, amount, currency, rate_prefix, sip_code, reason FROM xdrs"
                " ORDER BY id",
                "SELECT account_id, customer_id, kind, amount, currency, balance_after,"
                " comment FROM balance_operations ORDER BY id",
                "SELECT id, balance, first_use FROM accounts ORDER BY id",
                "SELECT id, balance FROM customers ORDER BY id",
                "SELECT customer_id, day, spent, reached_at IS NULL FROM daily_usage"
                " ORDER BY customer_id, day"):
        assert query(other, sql) == query(one, sql), sql
    assert query(other, "SELECT count(*) FROM xdrs") == [(300,)]


def test_a_batch_replayed_after_a_crash_between_commit_and_xack_writes_nothing_twice(
        db, redis_client):
    add(redis_client, *mixed(500))
    crashed = XdrWriter(db, redis_client, "crashed", block_ms=50, batch=2000)
    crashed.ensure_group()
    crashed.size = 2000
    entries = crashed.read()
    assert len(entries) == 500
    # the transaction commits, then the writer dies before its MULTI (no XACK, no balances)
    crashed.biller.bill(crashed.pg(), [decode(fields[b"m"]) for _, fields in entries])
    crashed.drop_pg()
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 500
    before = totals(db)
    duplicates = m.DUPLICATES._value.get()
    # another writer takes the dead one's entries over and bills them again: all repeats
    drain(db, redis_client, "successor", claim_idle_s=0.0)
    assert totals(db) == before
    assert_exactly_once(db, 500)
    assert m.DUPLICATES._value.get() - duplicates == 500
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0
    # the successor still projects the committed balances
    (balance,), = query(db, "SELECT balance FROM accounts WHERE id = 'd0'")
    assert redis_client.get(keyspace.balance("account", "d0")) == format(balance, "f").encode()


def test_three_writers_in_one_group_bill_20k_events_exactly_once(db, redis_server,
                                                                 redis_client):
    legs = mixed(20_000)
    add(redis_client, *legs, *legs[5000:6000])      # 1000 of them delivered twice
    writers = [writer_process(db, redis_server.port, f"w{n}", "--until-idle",
                              "--claim-idle", "5", "--batch", "700") for n in range(3)]
    try:   # read their logs side by side: a full pipe would stall a writer
        with ThreadPoolExecutor(3) as pool:
            logs = list(pool.map(lambda proc: proc.communicate(timeout=600)[1], writers))
        for proc, err in zip(writers, logs):
            assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in writers:
            kill_group(proc)
    assert_exactly_once(db, 20_000)
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0
    assert redis_client.xlen(DEAD_STREAM) == 0


def test_mixed_legs_unknown_account_and_a_tariff_changed_mid_stream(db, redis_client):
    add(redis_client, *mixed(140), event("lost-1", account="nobody", customer_id=0))
    writer = drain(db, redis_client)
    [(_, fields)] = redis_client.xrange(DEAD_STREAM)
    assert fields[b"error"].decode() == "Unbillable: unknown account 'nobody'"
    assert_exactly_once(db, 140)
    charged = dict(query(db, "SELECT leg, count(*) FILTER (WHERE amount > 0) FROM xdrs"
                             " GROUP BY leg"))
    assert charged["onnet"] == 0 and charged["toll"] > 0 and charged["in"] > 0
    assert query(db, "SELECT count(*) FILTER (WHERE amount > 0), count(*) FROM xdrs"
                     " WHERE connect_time IS NULL") == [(0, 28)]
    assert query(db, "SELECT count(*) FROM xdrs WHERE cld LIKE '1800%%' AND amount > 0") == [
        (0,)]
    assert query(db, "SELECT count(*) > 0 FROM balance_operations WHERE amount < 0") == [(True,)]
    assert query(db, "SELECT DISTINCT currency FROM xdrs WHERE leg = 'onnet'"
                     " ORDER BY currency") == [("EUR",), ("USD",)]
    loads = writer.biller.loads
    # nothing changed: the next batch is rated from memory alone
    add(redis_client, *(event(f"again-{n}", account="d2", cld="12125550000", customer_id=0)
                        for n in range(2)))
    drain_with(writer)
    assert writer.biller.loads == loads
    # the operator changes the 1 rate (provisioning publishes the rate's key)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE rates SET price_first = 1, price_next = 1, connect_fee = 0"
                     " WHERE tariff_id = 1 AND prefix = '1'")
        loader.publish(redis_client, loader.rate_changes(conn, 1, "1"))
    wait_for(lambda: followed(writer, lambda: 1 not in writer.biller.tables
                              or 1 in writer.biller.changed_rates),
             what="the changed rate noticed")
    add(redis_client, *(event(f"after-{n}", account="d2", cld="12125550000", customer_id=0)
                        for n in range(2)))
    drain_with(writer)
    assert writer.biller.loads == loads + 1
    assert query(db, "SELECT call_id, amount FROM xdrs WHERE call_id LIKE 'again-%%' OR"
                     " call_id LIKE 'after-%%' ORDER BY call_id") == [
        ("after-0", D("2.00000")), ("after-1", D("2.00000")),
        ("again-0", D("0.22000")), ("again-1", D("0.22000"))]
    assert_exactly_once(db, 144)


def test_an_account_moved_to_another_money_model_is_billed_by_the_locked_row(db,
                                                                             redis_client):
    add(redis_client, event("c1", account="d4", customer_id=0),
        event("c2", account="c4", customer_id=0))
    writer = drain(db, redis_client)
    # changed behind the cache's back (no invalidation): the locked row says credit now
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET billing_model = 'credit', balance = 0 WHERE id = 'd4'")
    add(redis_client, event("c3", account="d4", customer_id=0),
        event("c4", account="c4", customer_id=0))
    drain_with(writer)
    assert query(db, "SELECT balance FROM accounts WHERE id = 'd4'") == [(D("0.22000"),)]
    assert query(db, "SELECT account_id, amount FROM balance_operations WHERE comment LIKE"
                     " 'xdr %% of account d4'") == [(None, D("0.22000"))]


def test_the_writer_follows_the_invalidation_channel(db, redis_client):
    writer = drain(db, redis_client)
    biller = writer.biller
    with psycopg.connect(db, autocommit=True) as conn:
        biller.facts(conn, ["d0", "c1"])
        biller.find_rate(conn, 1, "", "1212")
    assert set(biller.payers) == {"d0", "c1"} and 1 in biller.tables
    loader.publish(redis_client, loader.Changes(put={keyspace.account("d0"): b"x",
                                                     keyspace.rates(1): b"y"}))
    wait_for(lambda: followed(writer, lambda: "d0" not in biller.payers),
             what="the account's facts dropped")
    assert "c1" in biller.payers and 1 not in biller.tables
    redis_client.publish(keyspace.INVALIDATE, "*")
    wait_for(lambda: followed(writer, lambda: not biller.payers), what="everything dropped")


def test_a_write_whose_messages_were_lost_drops_the_cached_facts(db, redis_client):
    writer = drain(db, redis_client)
    biller = writer.biller
    with psycopg.connect(db, autocommit=True) as conn:
        biller.facts(conn, ["d0"])
    loader.publish(redis_client, loader.Changes(put={keyspace.account("c1"): b"x"}))
    generation = int(redis_client.get(keyspace.GENERATION))
    wait_for(lambda: followed(writer, lambda: writer.heard_gen == generation, checked=True),
             what="the write's generation heard")
    for _ in range(3):  # a write announced in full: nothing was lost
        followed(writer, lambda: True, checked=True)
    assert "d0" in biller.payers
    redis_client.incr(keyspace.GENERATION)  # a write published while we were not subscribed
    wait_for(lambda: followed(writer, lambda: "d0" not in biller.payers, checked=True),
             what="the facts dropped after the generation stayed ahead")


def test_a_changed_prefix_is_read_again_and_the_rest_of_the_tariff_kept(db, redis_client):
    writer = drain(db, redis_client)
    biller = writer.biller
    with psycopg.connect(db, autocommit=True) as conn:
        assert biller.find_rate(conn, 1, "", "18005551234").prefix == "1800"  # type: ignore[union-attr]
        table = biller.tables[1][0]
        conn.execute("UPDATE rates SET price_first = 0.5 WHERE tariff_id = 1 AND prefix = '44'")
        conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                     " interval_first, interval_next) VALUES (1, '4420', 0.7, 0.7, 60, 60)")
        conn.execute("DELETE FROM rates WHERE tariff_id = 1 AND prefix = '1800'")
        for prefix in ("44", "4420", "1800"):
            redis_client.publish(keyspace.INVALIDATE, keyspace.rates(1) + "#" + prefix)
        wait_for(lambda: followed(writer, lambda: len(biller.changed_rates.get(1, ())) == 3),
                 what="three changed prefixes noticed")
        biller.refresh_rates(conn)
        assert biller.tables[1][0] is table and len(table) == 3
        found = {number: biller.find_rate(conn, 1, "", number) for number in
                 ("4421", "44201", "18005551234")}
    assert {number: (hit.prefix, hit.rate.price_first) for number, hit in found.items()
            if hit is not None} == {"4421": ("44", D("0.5")), "44201": ("4420", D("0.7")),
                                    "18005551234": ("1", D("0.06"))}


def drain_with(writer: XdrWriter) -> None:
    writer.run(threading.Event(), until_idle=True)


def followed(writer: XdrWriter, done: Callable[[], bool], checked: bool = False) -> bool:
    """Apply the invalidations published so far (`checked`: and compare the generation
    now, whenever it was last compared), then check."""
    if checked:
        writer.gen_checked = 0.0
    writer.follow_changes()
    return done()
