"""`tollgate xdr list|show` against real PostgreSQL: account and customer xDR pages."""
from __future__ import annotations

import json

import psycopg
import pytest

from provisioning import cli
from provisioning.migrate import migrate

pytestmark = pytest.mark.integration

RACHEL, MARK, OTHER = "17785551209", "17785551210", "5550001"
SEED = """
INSERT INTO customers (name, currency, timezone)
VALUES ('Smart Calls, Ltd.', 'USD', 'America/Vancouver'), ('Elsewhere', 'EUR', 'UTC');
INSERT INTO products (name, currency) VALUES ('Cloud PBX', 'USD'), ('Euro', 'EUR');
INSERT INTO ids (id, kind) VALUES ('17785551209', 'account'), ('17785551210', 'account'),
                                  ('5550001', 'account');
INSERT INTO accounts (id, customer_id, product_id)
VALUES ('17785551209', 1, 1), ('17785551210', 1, 1), ('5550001', 2, 2);
"""
XDR = ("INSERT INTO xdrs (session_id, call_id, leg, account_id, customer_id, cli, cld, access_code,"
       " setup_time, connect_time, disconnect_time, duration, charged_seconds, amount, currency,"
       " rate_prefix, sip_code, reason) VALUES"
       " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
# (session, call_id, leg, account, customer, cli, cld, access_code, setup, connect, end,
#  duration, charged, amount, currency, prefix, sip_code, reason); times UTC
ROWS = [
    # the seed's call: Mark's phone, Rachel's PIN. The toll leg is stored first on purpose.
    ("s1", "toll-1", "toll", RACHEL, 1, "1778555#4545", "442071234567", "",
     "2025-11-12 18:00:20+00", "2025-11-12 18:00:25+00", "2025-11-12 18:01:26+00",
     61, 120, "0.10000", "USD", "44", 200, "BYE"),
    ("s1", "ivr-1", "ivr", MARK, 1, MARK, "8000", "IN", "2025-11-12 18:00:00+00",
     "2025-11-12 18:00:01+00", "2025-11-12 18:01:27+00", 86, 0, "0", "USD", None, 200, "BYE"),
    # 23:30 on Nov 12 in Vancouver, already Nov 13 in UTC; busy
    ("s2", "c2", "onnet", RACHEL, 1, RACHEL, MARK, "", "2025-11-13 07:30:00+00", None, None,
     0, 0, "0", "USD", None, 486, "Busy Here"),
    ("s3", "c3", "out", MARK, 1, MARK, "12125551234", "", "2025-11-10 12:00:00+00",
     "2025-11-10 12:00:02+00", "2025-11-10 13:02:05+00",
     3723, 3780, "1.26000", "USD", "1", 200, "BYE"),
    ("s4", "c4", "out", OTHER, 2, OTHER, "420212345678", "", "2025-11-12 09:00:00+00",
     "2025-11-12 09:00:01+00", "2025-11-12 09:01:00+00",
     59, 60, "0.07000", "EUR", "420", 200, "BYE"),
    # an account deleted since: its xDR stays
    ("s5", "c5", "out", "17785550000", 1, "17785550000", "18005551234", "",
     "2025-11-01 12:00:00+00", "2025-11-01 12:00:01+00", "2025-11-01 12:00:11+00",
     10, 0, "0", "USD", "1800", 200, "BYE"),
]


class Tollgate:
    def __init__(self, dsn: str, capsys):
        self.dsn, self.capsys = dsn, capsys
        self.out = self.err = ""

    def __call__(self, *argv: str) -> int:
        self.capsys.readouterr()
        code = cli.main(["--dsn", self.dsn, *argv])
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code

    def json(self, *argv: str) -> list[dict]:
        assert self("--json", *argv) == 0, self.err
        return json.loads(self.out)


@pytest.fixture
def tg(pg_dsn, capsys):
    migrate(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(SEED)
        for row in ROWS:
            conn.execute(XDR, row)
    return Tollgate(pg_dsn, capsys)


def legs(records: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["session"], r["leg"], r["account"]) for r in records]


def test_customer_page_groups_both_legs_of_a_session(tg):
    assert tg("xdr", "list", "--customer", "Smart Calls, Ltd.") == 0, tg.err
    lines = tg.out.splitlines()
    assert lines[0].split() == ["LEG", "ACCOUNT", "CLI", "CLD", "CONNECT", "DURATION", "CHARGED",
                                "AMOUNT", "RESULT"]
    sessions = [line for line in lines if line.startswith("session ")]
    assert sessions == ["session s2", "session s1", "session s3", "session s5"]
    s1 = lines.index("session s1")
    ivr, toll = lines[s1 + 1].split(), lines[s1 + 2].split()
    assert ivr[:2] == ["ivr", MARK] and toll[:2] == ["toll", RACHEL]
    # connect time in Vancouver (PST), h:mm:ss duration, amount with currency, SIP result
    assert ivr[4:] == ["2025-11-12", "10:00:01", "0:01:26", "0", "0.00000", "USD", "200", "BYE"]
    assert toll[4:] == ["2025-11-12", "10:00:25", "0:01:01", "120", "0.10000", "USD", "200", "BYE"]
    busy = lines[lines.index("session s2") + 1].split()
    assert busy[4:] == ["-", "0:00:00", "0", "0.00000", "USD", "486", "Busy", "Here"]
    assert "1:02:03" in lines[lines.index("session s3") + 1]
    assert lines[-1] == ("total: 4 calls, 5 legs, duration 1:04:40, charged 3900 s,"
                         " amount 1.36000 USD (times in America/Vancouver)")
    assert OTHER not in tg.out


def test_account_page_shows_only_that_accounts_legs(tg):
    assert tg("xdr", "list", "--account", RACHEL) == 0, tg.err
    assert [line.split()[:2] for line in tg.out.splitlines() if line.startswith("  ")][1:] == [
        ["onnet", RACHEL], ["toll", RACHEL]]
    sessions = [line for line in tg.out.splitlines() if line.startswith("session ")]
    assert sessions == ["session s2", "session s1"]
    assert (legs(tg.json("xdr", "list", "--account", RACHEL))
            == [("s2", "onnet", RACHEL), ("s1", "toll", RACHEL)])
    assert (legs(tg.json("xdr", "list", "--account", MARK))
            == [("s1", "ivr", MARK), ("s3", "out", MARK)])
    # deleted since, still browsable
    assert (legs(tg.json("xdr", "list", "--account", "17785550000"))
            == [("s5", "out", "17785550000")])


def test_json_amounts_are_decimal_strings_and_times_local(tg):
    records = tg.json("xdr", "list", "--customer", "Smart Calls, Ltd.")
    assert legs(records) == [("s2", "onnet", RACHEL), ("s1", "ivr", MARK), ("s1", "toll", RACHEL),
                             ("s3", "out", MARK), ("s5", "out", "17785550000")]
    toll = records[2]
    assert toll == {
        "session": "s1", "call_id": "toll-1", "leg": "toll", "account": RACHEL,
        "customer": "Smart Calls, Ltd.", "cli": "1778555#4545", "cld": "442071234567",
        "access_code": "", "setup_time": "2025-11-12T10:00:20-08:00",
        "connect_time": "2025-11-12T10:00:25-08:00", "disconnect_time": "2025-11-12T10:01:26-08:00",
        "duration": 61, "charged_seconds": 120, "amount": "0.10000", "currency": "USD",
        "rate_prefix": "44", "sip_code": 200, "reason": "BYE"}
    assert records[0]["connect_time"] is None
    assert all(isinstance(r["amount"], str) for r in records)


def test_dates_are_days_in_the_customers_timezone(tg):
    day = tg.json("xdr", "list", "--customer", "Smart Calls, Ltd.",
                  "--from", "2025-11-12", "--to", "2025-11-12")
    # s2 began at 23:30 on the 12th in Vancouver (07:30 UTC on the 13th)
    assert legs(day) == [("s2", "onnet", RACHEL), ("s1", "ivr", MARK), ("s1", "toll", RACHEL)]
    assert tg.json("xdr", "list", "--account", MARK, "--to", "2025-11-11") == [
        r for r in tg.json("xdr", "list", "--account", MARK) if r["session"] == "s3"]
    # a time without an offset is local; with one, as given
    late = tg.json("xdr", "list", "--customer", "Smart Calls, Ltd.", "--from", "2025-11-12T23:00")
    assert [r["session"] for r in late] == ["s2"]
    utc = tg.json("xdr", "list", "--customer", "Smart Calls, Ltd.",
                  "--from", "2025-11-12T18:00:10+00:00", "--to", "2025-11-13T00:00:00+00:00")
    assert legs(utc) == [("s1", "toll", RACHEL)]


def test_limit_counts_calls_not_legs(tg):
    assert legs(tg.json("xdr", "list", "--customer", "Smart Calls, Ltd.", "--limit", "2")) == [
        ("s2", "onnet", RACHEL), ("s1", "ivr", MARK), ("s1", "toll", RACHEL)]
    assert tg("xdr", "list", "--customer", "Smart Calls, Ltd.", "--limit", "1") == 0
    assert tg.out.splitlines()[-1].startswith("total: 1 call, 1 leg, duration 0:00:00")


def test_show_every_leg_of_a_session(tg):
    assert legs(tg.json("xdr", "show", "s1")) == [("s1", "ivr", MARK), ("s1", "toll", RACHEL)]
    assert tg("xdr", "show", "s1") == 0, tg.err
    assert tg.out.splitlines()[1] == "session s1"
    assert "total: 1 call, 2 legs, duration 0:02:27, charged 120 s, amount 0.10000 USD" in tg.out
    assert tg("xdr", "list", "--customer", "Elsewhere") == 0
    assert "0.07000 EUR" in tg.out and "(times in UTC)" in tg.out


@pytest.mark.parametrize("argv, message", [
    (("xdr", "list", "--account", "19999999999"), "unknown account 19999999999"),
    (("xdr", "list", "--customer", "Nobody"), "unknown customer 'Nobody'"),
    (("xdr", "show", "nope"), "unknown session 'nope'"),
    (("xdr", "list", "--account", RACHEL, "--from", "yesterday"), "--from 'yesterday' is not"),
    (("xdr", "list", "--account", RACHEL, "--limit", "0"), "--limit 0"),
    (("xdr", "list", "--account", RACHEL, "--limit", "x"), "invalid int value"),
    (("xdr", "list"), "one of the arguments --account --customer is required"),
    (("xdr", "list", "--account", RACHEL, "--customer", "Smart Calls, Ltd."), "not allowed with"),
])
def test_bad_input_is_one_line_and_exit_2(tg, argv, message):
    assert tg(*argv) == 2
    assert tg.out == ""
    assert tg.err.count("\n") == 1 and tg.err.startswith("tollgate: ") and message in tg.err
