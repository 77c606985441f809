"""Vouchers (voice-application-settings.txt, "Account top-up via voucher") against real
PostgreSQL and Redis: batches of random single-use numbers, CSV export, redemption that
credits the account through the balance rule exactly once, whoever races for it, and
refusals that write nothing."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import psycopg
import pytest

from provisioning import vouchers
from tests.races import at_once

pytestmark = pytest.mark.integration

CARD = "55500000001"      # demo: a debit card holding 5.00 USD
RACHEL = "17785551209"    # demo: a credit account (owes 0.00, limit 50.00 USD)


@pytest.fixture
def tg(demo_cli):
    return demo_cli


def batch_of(tg, count: int = 3, amount: str = "10", *extra: str) -> list[str]:
    """Generate a batch; its voucher numbers, from the CSV export."""
    assert tg("--json", "voucher", "generate", "--count", str(count), "--amount", amount,
              "--currency", "USD", *extra) == 0, tg.err
    batch = str(__import__("json").loads(tg.out)["batch"])
    assert tg("voucher", "export", batch) == 0, tg.err
    rows = list(csv.DictReader(io.StringIO(tg.out)))
    return [row["voucher"] for row in rows]


def query(dsn: str, sql: str, *args):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_batch_has_distinct_random_numbers_of_the_seeds_length(tg, pg_dsn):
    codes = batch_of(tg, 200)
    assert len(set(codes)) == 200
    assert all(len(code) == 11 and code.isdigit() for code in codes)
    # random digits: every digit shows up in the batch, no two vouchers in a sequence
    assert set("".join(codes)) == set("0123456789")
    assert sorted(int(c) for c in codes) != list(range(int(min(codes)), int(min(codes)) + 200))
    assert tg("voucher", "generate", "--count", "5", "--amount", "2.50", "--currency", "USD",
              "--length", "12-14") == 0
    lengths = {len(code) for (code,) in query(
        pg_dsn, "SELECT code FROM vouchers WHERE amount = 2.5")}
    assert lengths <= {12, 13, 14}


def test_redeeming_credits_a_debit_card_once_with_an_audit_trail(tg, pg_dsn, redis_client):
    code = batch_of(tg, 1, "10")[0]
    assert tg("voucher", "redeem", code, CARD) == 0, tg.err
    assert "15.00" in tg.out
    assert query(pg_dsn, "SELECT balance FROM accounts WHERE id = %s", CARD) == [
        (Decimal("15.00000"),)]
    assert redis_client.get(f"tg:bal:account:{CARD}") == b"15.00000"
    ((kind, amount, after, op_id),) = query(
        pg_dsn, "SELECT kind, amount, balance_after, id FROM balance_operations"
                " WHERE account_id = %s", CARD)
    assert (kind, amount, after) == ("voucher", Decimal("10.00000"), Decimal("15.00000"))
    assert query(pg_dsn, "SELECT used_by, balance_operation_id FROM vouchers WHERE code = %s",
                 code) == [(CARD, op_id)]
    # single use: the second try is refused with one line, exit 2, nothing written
    assert tg("voucher", "redeem", code, CARD) == 2
    assert tg.err.strip() == "tollgate: voucher already used"
    assert query(pg_dsn, "SELECT balance FROM accounts WHERE id = %s", CARD) == [
        (Decimal("15.00000"),)]


def test_a_voucher_lowers_what_a_credit_account_owes(tg, pg_dsn):
    code = batch_of(tg, 1, "4")[0]
    assert tg("voucher", "redeem", code, RACHEL) == 0, tg.err
    assert query(pg_dsn, "SELECT a.balance, c.balance FROM accounts a JOIN customers c"
                         " ON c.id = a.customer_id WHERE a.id = %s", RACHEL) == [
        (Decimal("-4.00000"), Decimal("-4.00000"))]


def test_two_callers_redeeming_one_voucher_at_once_credit_it_exactly_once(tg, pg_dsn):
    code = batch_of(tg, 1, "10")[0]
    outcomes = at_once(pg_dsn, *[lambda conn: vouchers.redeem(conn, code, CARD)] * 2)
    assert outcomes == ["done", "voucher already used"]
    assert query(pg_dsn, "SELECT balance FROM accounts WHERE id = %s", CARD) == [
        (Decimal("15.00000"),)]
    assert query(pg_dsn, "SELECT count(*) FROM balance_operations WHERE kind = 'voucher'") == [
        (1,)]


@pytest.mark.parametrize("setup, code, said", [
    ("expired", None, "voucher expired"),
    ("euro", None, "voucher is in EUR, the account in USD"),
    (None, "12345678901", "no such voucher"),
    (None, "12345abc", "voucher '12345abc': 4-32 digits expected"),
])
def test_a_voucher_that_cannot_be_used_is_refused_and_writes_nothing(tg, pg_dsn, setup, code,
                                                                     said):
    if setup == "expired":
        code = batch_of(tg, 1, "10", "--expires", "2020-01-01T00:00:00Z")[0]
    elif setup == "euro":
        assert tg("--json", "voucher", "generate", "--count", "1", "--amount", "3",
                  "--currency", "EUR") == 0
        code = query(pg_dsn, "SELECT code FROM vouchers WHERE currency = 'EUR'")[0][0]
    assert tg("voucher", "redeem", code, CARD) == 2
    assert tg.err.strip() == f"tollgate: {said}"
    assert query(pg_dsn, "SELECT balance FROM accounts WHERE id = %s", CARD) == [
        (Decimal("5.00000"),)]
    assert query(pg_dsn, "SELECT count(*) FROM vouchers WHERE used_at IS NOT NULL") == [(0,)]
    assert query(pg_dsn, "SELECT count(*) FROM balance_operations") == [(0,)]


def test_listing_masks_the_numbers_and_export_leaves_out_the_used_ones(tg, pg_dsn):
    codes = batch_of(tg, 3, "1")
    assert tg("voucher", "redeem", codes[0], CARD) == 0
    (batch,) = query(pg_dsn, "SELECT id FROM voucher_batches")[0]
    assert tg("--json", "voucher", "list", str(batch)) == 0
    listed = __import__("json").loads(tg.out)
    assert [row["code"] for row in listed] == ["*******" + c[-4:] for c in codes]
    assert [row["state"] for row in listed] == ["used", "unused", "unused"]
    assert codes[1] not in tg.out
    assert tg("voucher", "export", str(batch)) == 0
    assert [row["voucher"] for row in csv.DictReader(io.StringIO(tg.out))] == codes[1:]
    assert tg("--json", "voucher", "batches") == 0
    (summary,) = __import__("json").loads(tg.out)
    assert (summary["size"], summary["used"], summary["unused"]) == (3, 1, 2)


@pytest.mark.parametrize("args, said", [
    (["--count", "0"], "voucher count 0: 1-100000 expected"),
    (["--count", "x"], "count 'x': a whole number expected"),
    (["--amount", "0"], "amount '0': more than 0 expected"),
    (["--amount", "-1"], "amount '-1' is negative"),
    (["--currency", "dollars"], "currency 'dollars': three letters expected (e.g. USD)"),
    (["--length", "3"], "voucher length 3-3: 4-32 digits, min <= max expected"),
    (["--length", "12-10"], "voucher length 12-10: 4-32 digits, min <= max expected"),
    (["--length", "4", "--count", "100"], "100 more vouchers of 4-4 digits would be guessable"),
    (["--expires", "soon"], "expiry 'soon' is not an ISO 8601 time"),
])
def test_a_bad_batch_is_refused_with_one_line_and_nothing_written(tg, pg_dsn, args, said):
    base = {"--count": "2", "--amount": "5", "--currency": "USD"}
    given = dict(zip(args[::2], args[1::2]))
    argv = [item for key, value in {**base, **given}.items() for item in (key, value)]
    assert tg("voucher", "generate", *argv) == 2
    assert tg.err.startswith(f"tollgate: {said}"), tg.err
    assert query(pg_dsn, "SELECT count(*) FROM vouchers") == [(0,)]
    assert query(pg_dsn, "SELECT count(*) FROM voucher_batches") == [(0,)]
