"""The xDR writer bills a client with rating profiles by the product of the profile that
was active when the call was set up (the one Kamailio authorized it with)."""
from __future__ import annotations

from decimal import Decimal as D

import psycopg
import pytest

from tests.integration.test_xdr_writer import RACHEL, add, drain, event, query, seeded

pytestmark = pytest.mark.integration

# event()'s legs start at 2026-11-21 22:26:40 UTC and last 61.5 s (toll tariff: 0.22)
PROFILES = """
INSERT INTO tariffs (name, currency) VALUES ('cheap', 'USD');
INSERT INTO rates (tariff_id, prefix, price_first, price_next, interval_first, interval_next)
VALUES (2, '1', 0.01, 0.01, 60, 60);
INSERT INTO products (name, currency) VALUES ('Cheap', 'USD');
INSERT INTO rating_entries (product_id, access_code, tariff_id) VALUES (2, '', 2);
"""


@pytest.fixture
def db(pg_dsn):
    dsn = seeded(pg_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PROFILES)
    return dsn


def profile(dsn: str, product: int, activation: str, expiry: str | None = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO rating_profiles (customer_id, product_id, activation, expiry)"
                     " VALUES (1, %s, %s, %s)", (product, activation, expiry))


def amount(dsn: str, call: str) -> D:
    return query(dsn, "SELECT amount FROM xdrs WHERE call_id = %s", call)[0][0]


def test_no_profiles_bills_by_the_accounts_product(db, redis_client):
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert amount(db, "c1") == D("0.22")


def test_the_active_profile_at_setup_bills(db, redis_client):
    profile(db, 1, "2026-01-01T00:00:00Z")
    profile(db, 2, "2026-11-01T00:00:00Z")                       # newest: bills
    profile(db, 1, "2026-11-22T00:00:00Z")                       # after the call's setup
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert amount(db, "c1") == D("0.02")                        # 2 minutes at 0.01


def test_an_expired_profile_leaves_the_older_one(db, redis_client):
    profile(db, 1, "2026-01-01T00:00:00Z")
    profile(db, 2, "2026-11-01T00:00:00Z", "2026-11-21T00:00:00Z")
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert amount(db, "c1") == D("0.22")


def test_no_profile_that_can_bill_charges_nothing_and_says_so(db, redis_client, caplog):
    profile(db, 2, "2026-01-01T00:00:00Z")
    with psycopg.connect(db, autocommit=True) as conn:          # the account's product rates 44
        conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                     " interval_first, interval_next) VALUES (1, '44', 0.5, 0.5, 60, 60)")
    add(redis_client, event("c1", cld="4420790000"))            # 'cheap' has no 44
    drain(db, redis_client)
    assert amount(db, "c1") == D("0")
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("0"),)]
    assert "no rate for toll leg" in caplog.text


def test_a_client_whose_calls_are_not_priced_pays_nothing(db, redis_client):
    """Billing method none: the leg is rated (its prefix recorded), charged nothing."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE customers SET billing_method = 'none'")
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert query(db, "SELECT amount, charged_seconds, rate_prefix FROM xdrs") == [
        (D("0"), 0, "1")]
    assert query(db, "SELECT balance FROM accounts WHERE id = %s", RACHEL) == [(D("0"),)]


def test_without_the_billing_feature_nothing_is_priced_either(db, redis_client):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE customers SET features = '{recording}'")
    add(redis_client, event("c1"))
    drain(db, redis_client)
    assert amount(db, "c1") == D("0")
