"""The xDR writer's in-memory tariffs (billing.tariff_book over billing.prefix_rates) pick
the rate PostgreSQL's per-event `starts_with` query picks: odd numbers (non-digits, empty,
longer than any prefix), prefixes longer than hotpath tables hold, prefixes changed one by
one after the tariff was read."""
from __future__ import annotations

import random

import psycopg
import pytest

from billing.xdr import decode
from provisioning import xdr_writer
from provisioning.xdr_batch import BatchBiller
from tests.integration.test_xdr_writer import event, query
from tests.integration.test_xdr_writer_batch import seeded

pytestmark = pytest.mark.integration

LONG = "1" * 28
NUMBERS = ["", "*98", "abc", "12a34", "+1212", "1 212", "١٢٣", "44", "4", "1", "18", "1800",
           "18005551234", "442071234567", "4420x", "9" * 40, LONG, LONG + "5", LONG[:-1],
           "1" * 21, "0044", "\u00bd", "1\t"]


def rated_by_sql(conn: psycopg.Connection, product: int, code: str, number: str):
    found = xdr_writer.find_rate(conn, product, code, number)
    if found is None:
        return None
    rate, currency = found
    return rate.prefix, rate.price_first, rate.connect_fee, currency


def rated_in_memory(biller: BatchBiller, conn: psycopg.Connection, product: int, code: str,
                    number: str):
    found = biller.find_rate(conn, product, code, number)
    if found is None:
        return None
    return found.prefix, found.rate.price_first, found.rate.connect_fee, found.currency


def assert_same(biller: BatchBiller, conn: psycopg.Connection, numbers: list[str]) -> None:
    for code in ("", "IN", "NONE"):
        for number in numbers:
            assert rated_in_memory(biller, conn, 1, code, number) == rated_by_sql(
                conn, 1, code, number), (code, number)


def test_the_in_memory_tariff_picks_what_starts_with_picks(pg_dsn):
    db = seeded(pg_dsn)
    rng = random.Random(12)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                     " interval_first, interval_next, connect_fee) VALUES"
                     " (1, %s, 0.9, 0.9, 60, 60, 0), (1, %s, 0.8, 0.8, 60, 60, 0),"
                     " (2, '1', 0.02, 0.02, 60, 60, 0)", (LONG, "1" * 21))
        numbers = NUMBERS + ["".join(rng.choice("014829") for _ in range(rng.randint(0, 30)))
                             for _ in range(200)]
        biller = BatchBiller()
        assert_same(biller, conn, numbers)
        loads = biller.loads
        # the operator changes prefixes one by one: put and removed in the cached tables
        conn.execute("DELETE FROM rates WHERE tariff_id = 2 AND prefix = '1'")
        conn.execute("DELETE FROM rates WHERE tariff_id = 1 AND prefix IN ('1', %s)", (LONG,))
        conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                     " interval_first, interval_next, connect_fee) VALUES"
                     " (2, '10', 0.03, 0.03, 60, 60, 0), (1, '18', 0.7, 0.7, 60, 60, 0.01),"
                     " (1, %s, 0.6, 0.6, 60, 60, 0)", (LONG + "5",))
        for tariff, prefix in ((2, "1"), (2, "10"), (1, "1"), (1, LONG), (1, "18"),
                               (1, LONG + "5")):
            biller.invalidate(f"tg:rates:{tariff}#{prefix}")
        biller.refresh_rates(conn)
        assert biller.loads == loads + 2    # one query per tariff, no table read again
        assert_same(biller, conn, numbers)
        # the default prefix moves from tariff 2 to tariff 1 (each table is read again)
        conn.execute("DELETE FROM rates WHERE tariff_id = 2 AND prefix = ''")
        conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                     " interval_first, interval_next, connect_fee) VALUES"
                     " (1, '', 0.5, 0.5, 60, 60, 0)")
        for tariff in (1, 2):
            biller.invalidate(f"tg:rates:{tariff}#")
        biller.refresh_rates(conn)
        assert_same(biller, conn, numbers)


def test_a_batch_bills_numbers_with_a_non_digit_as_per_event_sql_does(pg_server):
    """'IN' legs rate on tariff 2's '' prefix whatever the number; plain legs to a number
    with a non-digit find no rate on tariff 1 (no '' prefix) and are not charged."""
    clds = ["*98", "+44 20 7123", "abc", "", "1x", "44a"]
    events = [decode(event(f"odd-{n}-{code}", account=f"d{n % 4}", leg=leg, cld=cld,
                           access_code=code, customer_id=0, talk="125"))
              for n, cld in enumerate(clds) for leg, code in (("in", "IN"), ("toll", ""))]
    one, other = (seeded(pg_server.fresh_database(name)) for name in ("odd_ref", "odd_new"))
    with psycopg.connect(one, autocommit=True) as conn:
        reference = xdr_writer.bill_batch(conn, events)
    with psycopg.connect(other, autocommit=True) as conn:
        billed = BatchBiller().bill(conn, events)
    assert [b.amount for b in billed if b is not None] == [r.amount for r in reference]
    sql = ("SELECT call_id, cld, amount, currency, rate_prefix, charged_seconds FROM xdrs"
           " ORDER BY call_id")
    assert query(other, sql) == query(one, sql)
    assert query(one, "SELECT count(*) FROM xdrs WHERE leg = 'in' AND rate_prefix = ''"
                      " AND amount > 0") == [(len(clds),)]
    assert query(one, "SELECT cld, rate_prefix, amount > 0 FROM xdrs WHERE leg = 'toll'"
                      " ORDER BY call_id") == [
        ("*98", None, False), ("+44 20 7123", "44", True), ("abc", None, False),
        ("", None, False), ("1x", "1", True), ("44a", "44", True)]
