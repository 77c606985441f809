"""A client's max daily usage in the xDR writer, against real Redis, PostgreSQL and an SMTP
server: each external leg's charge is added to the client's day (in its timezone), the day
is projected to Redis, and reaching the limit e-mails the client once."""
from __future__ import annotations

import threading
from decimal import Decimal as D

import psycopg
import pytest

from provisioning.loader import resync
from provisioning.xdr_writer import XdrWriter
from tests.integration.test_xdr_writer import MARK, RACHEL, add, event, query, seeded
from tests.mailbox import Mailbox
from tollgate import keyspace
from tollgate.config import Settings
from tollgate.mail import Mailer

pytestmark = pytest.mark.integration

# event()'s legs are set up at 1795300000: 2026-11-21 22:26:40 UTC, 14:26:40 in Vancouver
SETUP = D("1795300000.000")
VANCOUVER_MIDNIGHT = D("1795334400")   # 2026-11-22 00:00 in Vancouver (08:00 UTC)
CLIENT = "ops@smartcalls.example"


@pytest.fixture
def db(pg_dsn):
    dsn = seeded(pg_dsn)
    execute(dsn, "UPDATE customers SET timezone = 'America/Vancouver', max_daily_usage = 0.5,"
               " daily_usage_email = %s", CLIENT)
    return dsn


@pytest.fixture
def mailbox():
    box = Mailbox().start()
    yield box
    box.stop()


def execute(dsn: str, sql: str, *args) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, args)


def writer(dsn, client, port: int | None) -> XdrWriter:
    settings = Settings(smtp_host="127.0.0.1" if port else "", smtp_port=port or 25)
    return XdrWriter(dsn, client, "test", block_ms=50, mailer=Mailer(settings))


def drain(dsn, client, port: int | None = None) -> XdrWriter:
    w = writer(dsn, client, port)
    w.run(threading.Event(), until_idle=True)
    return w


def day_row(dsn, day="2026-11-21"):
    rows = query(dsn, "SELECT spent, reached_at IS NOT NULL, notified_at IS NOT NULL"
                      " FROM daily_usage WHERE customer_id = 1 AND day = %s", day)
    return rows[0] if rows else None


def test_external_legs_count_toward_the_clients_day_in_its_timezone(db, redis_client):
    # toll 61.5 s: 0.10 + 2 x 0.06 = 0.22; out 30 s: 0.16; onnet and IVR legs do not count
    add(redis_client, event("c1"), event("c2", account=MARK, leg="out", talk="30"),
        event("c3", leg="onnet"), event("c4", leg="ivr"),
        event("c5", talk="30", setup_ts=VANCOUVER_MIDNIGHT, connect_ts=VANCOUVER_MIDNIGHT + 3,
              end_ts=VANCOUVER_MIDNIGHT + 33))
    drain(db, redis_client)
    assert day_row(db) == (D("0.38"), False, False)
    assert day_row(db, "2026-11-22") == (D("0.16"), False, False)
    assert redis_client.get(keyspace.daily_spent(1, "2026-11-21")) == b"0.38000"
    assert redis_client.get(keyspace.daily_spent(1, "2026-11-22")) == b"0.16000"
    assert 0 < redis_client.ttl(keyspace.daily_spent(1, "2026-11-21")) <= \
        keyspace.DAILY_SPENT_TTL_S


def test_redelivered_legs_are_counted_once(db, redis_client):
    add(redis_client, event("c1"))
    drain(db, redis_client)
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert day_row(db) == (D("0.22"), False, False)


def test_reaching_the_limit_e_mails_the_client_once(db, redis_client, mailbox):
    add(redis_client, event("c1"), event("c2"))        # 0.44 of 0.50: not reached
    drain(db, redis_client, mailbox.port)
    assert mailbox.to(CLIENT) == []
    add(redis_client, event("c3"))                      # 0.66: reached
    drain(db, redis_client, mailbox.port)
    add(redis_client, event("c4"))                      # still reached: no second e-mail
    drain(db, redis_client, mailbox.port)
    assert day_row(db) == (D("0.88"), True, True)
    [mail] = mailbox.to(CLIENT)
    assert mail["Subject"] == "Max daily usage reached: Smart Calls, Ltd. on 2026-11-21"
    body = mail.get_content()
    assert "0.50000 USD" in body and "0.66000 USD" in body and "America/Vancouver" in body
    assert redis_client.scard(keyspace.DAILY_REACHED) == 0


def test_a_refusal_by_kamailio_e_mails_even_below_the_limit(db, redis_client, mailbox):
    """0.40 spent of 0.50: a call's first minute (0.16) no longer fits, Kamailio refuses
    it and marks the day; the writer tells the client."""
    redis_client.sadd(keyspace.DAILY_REACHED, "1:2026-11-21")
    drain(db, redis_client, mailbox.port)
    assert len(mailbox.to(CLIENT)) == 1
    assert day_row(db) == (D("0"), True, True)
    redis_client.sadd(keyspace.DAILY_REACHED, "1:2026-11-21", "junk", "9999:2026-11-21")
    drain(db, redis_client, mailbox.port)
    assert len(mailbox.to(CLIENT)) == 1


def test_a_relay_that_is_down_gets_the_e_mail_later(db, redis_client, mailbox):
    redis_client.sadd(keyspace.DAILY_REACHED, "1:2026-11-21")
    closed = Mailbox()   # a port nobody listens on
    w = writer(db, redis_client, closed.port)
    w.step()
    assert day_row(db) is None   # rolled back: not told yet
    assert redis_client.smembers(keyspace.DAILY_REACHED) == {b"1:2026-11-21"}
    drain(db, redis_client, mailbox.port)
    assert len(mailbox.to(CLIENT)) == 1
    assert day_row(db)[2]


def test_no_address_no_e_mail(db, redis_client, mailbox):
    execute(db, "UPDATE customers SET daily_usage_email = NULL")
    add(redis_client, event("c1"), event("c2"), event("c3"))
    drain(db, redis_client, mailbox.port)
    assert day_row(db) == (D("0.66"), True, False)
    assert mailbox.messages == []


def test_the_projection_of_a_day_is_never_lowered(db, redis_client):
    """Two writers may commit in one order and reach Redis in the other."""
    redis_client.set(keyspace.daily_spent(1, "2026-11-21"), "9.00000")
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert redis_client.get(keyspace.daily_spent(1, "2026-11-21")) == b"9.00000"


def test_resync_restores_recent_days(db, redis_client):
    execute(db, "INSERT INTO daily_usage (customer_id, day, spent)"
                " VALUES (1, current_date, 0.3), (1, current_date - 30, 7)")
    with psycopg.connect(db) as conn:
        resync(conn, redis_client)
    today, = query(db, "SELECT current_date::text")[0]
    assert redis_client.get(keyspace.daily_spent(1, today)) == b"0.30000"
    assert len(list(redis_client.scan_iter(keyspace.daily_spent(1, "*")))) == 1


def test_a_daily_usage_row_never_goes_negative(db):
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(db, "INSERT INTO daily_usage (customer_id, day, spent) VALUES (1, now(), -1)")


def test_the_charge_is_also_billed_to_the_payer(db, redis_client):
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("0.22"),)]
