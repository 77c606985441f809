"""Vouchers (voice-application-settings.txt, "Account top-up via voucher"): batches of
single-use numbers worth an amount in a currency, generated with the operating system's
random source, redeemed at most once whoever tries at the same moment.

generate() and redeem() run inside the caller's PostgreSQL transaction (the CLI's, or the
top-up application's) and return the Redis changes to publish after the commit, as every
provisioning write does. A redemption credits the account through the one balance rule
(provisioning/cli/balance.py add_funds) and leaves a `voucher` balance operation that
the voucher points at.
"""
from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime
from decimal import Decimal

import psycopg

from provisioning import loader
from provisioning.cli.balance import add_funds
from provisioning.cli.common import Row, fetch, fetch_one
from provisioning.validate import BadInput

MIN_LENGTH, MAX_LENGTH = 4, 32   # what the vouchers table accepts
DEFAULT_LENGTH = 11              # the seed's "Voucher number length" min and max
MAX_BATCH = 100_000
# codes are drawn until the batch is full; a code space this crowded refuses the batch
# (a guess must stay hopeless: at most one code in SPARSENESS is a voucher)
SPARSENESS = 1000
# said to a caller for every voucher that cannot be redeemed, whatever the reason, so a
# guesser learns nothing (the operator's CLI hears the reason)
INVALID = "invalid voucher"


def generate(conn: psycopg.Connection, count: int, amount: Decimal, currency: str,
             expires: datetime | None = None, min_length: int = DEFAULT_LENGTH,
             max_length: int = DEFAULT_LENGTH, comment: str = "") -> Row:
    """A batch of `count` new vouchers with distinct random numbers of min..max digits."""
    if not 1 <= count <= MAX_BATCH:
        raise BadInput(f"voucher count {count}: 1-{MAX_BATCH} expected")
    if not MIN_LENGTH <= min_length <= max_length <= MAX_LENGTH:
        raise BadInput(f"voucher length {min_length}-{max_length}: "
                       f"{MIN_LENGTH}-{MAX_LENGTH} digits, min <= max expected")
    space = sum(10 ** n for n in range(min_length, max_length + 1))
    existing = conn.execute("SELECT count(*) FROM vouchers").fetchone()[0]  # type: ignore[index]
    if (existing + count) * SPARSENESS > space:
        raise BadInput(f"{count} more vouchers of {min_length}-{max_length} digits would be "
                       "guessable: use longer numbers")
    batch = conn.execute(
        "INSERT INTO voucher_batches (amount, currency, expires, size, comment)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (amount, currency, expires, count, comment)).fetchone()[0]  # type: ignore[index]
    made = 0
    while made < count:
        codes = {_code(min_length, max_length) for _ in range(count - made)}
        inserted = conn.execute(
            "INSERT INTO vouchers (code, amount, currency, expires, batch_id)"
            " SELECT code, %s, %s, %s, %s FROM unnest(%s::text[]) AS code"
            " ON CONFLICT (code) DO NOTHING", (amount, currency, expires, batch, list(codes)))
        made += inserted.rowcount
    return {"batch": batch, "vouchers": count, "amount": loader.money(amount),
            "currency": currency, "expires": expires}


def _code(min_length: int, max_length: int) -> str:
    length = min_length + secrets.randbelow(max_length - min_length + 1)
    return f"{secrets.randbelow(10 ** length):0{length}d}"


def redeem(conn: psycopg.Connection, code: str, account: str
           ) -> tuple[loader.Changes, Row]:
    """Credit `account` with the voucher numbered `code` and use the voucher up, in the
    caller's transaction: of two redemptions at the same moment exactly one succeeds (the
    row lock makes the second see it used). BadInput says why one cannot."""
    if not code.isdigit() or not MIN_LENGTH <= len(code) <= MAX_LENGTH:
        raise BadInput(f"voucher {code!r}: {MIN_LENGTH}-{MAX_LENGTH} digits expected")
    holder = fetch_one(conn, "SELECT c.currency FROM accounts a"
                             " JOIN customers c ON c.id = a.customer_id WHERE a.id = %s",
                       (account,))
    if holder is None:
        raise BadInput(f"unknown account {account}")
    used = fetch_one(conn, "UPDATE vouchers SET used_by = %s, used_at = now()"
                           " WHERE code = %s AND used_at IS NULL AND currency = %s"
                           " AND (expires IS NULL OR expires > now())"
                           " RETURNING id, batch_id, amount, currency",
                     (account, code, holder["currency"]))
    if used is None:
        raise BadInput(_why_not(conn, code, holder["currency"]))
    changes, result, operation = add_funds(
        conn, account, used["amount"], "voucher",
        f"voucher {used['id']} of batch {used['batch_id']}", currency=used["currency"])
    conn.execute("UPDATE vouchers SET balance_operation_id = %s WHERE id = %s",
                 (operation, used["id"]))
    return changes, {**result, "voucher": used["id"], "amount": loader.money(used["amount"]),
                     "currency": used["currency"]}


def _why_not(conn: psycopg.Connection, code: str, currency: str) -> str:
    row = fetch_one(conn, "SELECT used_at, currency, expires <= now() AS expired"
                          " FROM vouchers WHERE code = %s", (code,))
    if row is None:
        return "no such voucher"
    if row["used_at"] is not None:
        return "voucher already used"
    if row["expired"]:
        return "voucher expired"
    return f"voucher is in {row['currency']}, the account in {currency}"


def batches(conn: psycopg.Connection) -> list[Row]:
    """Every batch with how many of its vouchers are used, unused and expired."""
    return fetch(conn, "SELECT b.id AS batch, b.amount, b.currency, b.expires, b.size,"
                       " count(v.used_at) AS used,"
                       " count(*) FILTER (WHERE v.used_at IS NULL AND"
                       "   (v.expires IS NULL OR v.expires > now())) AS unused,"
                       " b.comment, b.created_at"
                       " FROM voucher_batches b LEFT JOIN vouchers v ON v.batch_id = b.id"
                       " GROUP BY b.id ORDER BY b.id")


def listing(conn: psycopg.Connection, batch: int) -> list[Row]:
    """A batch's vouchers: the number masked but for its last 4 digits, and its state."""
    _batch(conn, batch)
    rows = fetch(conn, "SELECT id, code, amount, currency, expires, used_by, used_at,"
                       " expires <= now() AS expired FROM vouchers WHERE batch_id = %s"
                       " ORDER BY id", (batch,))
    for row in rows:
        row["code"] = "*" * (len(row["code"]) - 4) + row["code"][-4:]
        expired = row.pop("expired")
        row["state"] = "used" if row["used_at"] else "expired" if expired else "unused"
    return rows


def export_csv(conn: psycopg.Connection, batch: int) -> str:
    """The batch's unused vouchers in full, as CSV for printing (number, amount, currency,
    expires): the one place the numbers are shown."""
    _batch(conn, batch)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["voucher", "amount", "currency", "expires"])
    for code, amount, currency, expires in conn.execute(
            "SELECT code, amount, currency, expires FROM vouchers WHERE batch_id = %s"
            " AND used_at IS NULL ORDER BY id", (batch,)):
        writer.writerow([code, loader.money(amount), currency,
                         expires.isoformat() if expires else ""])
    return out.getvalue()


def _batch(conn: psycopg.Connection, batch: int) -> None:
    if conn.execute("SELECT 1 FROM voucher_batches WHERE id = %s", (batch,)).fetchone() is None:
        raise BadInput(f"unknown voucher batch {batch}")
