"""tollgate balance show|adjust: account balances and what is available (billing.money's rule);
every change a balance_operations row."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import redis

from billing import money
from billing.rating import ZERO
from provisioning import loader
from provisioning import validate as v
from provisioning.cli.common import Context, Row, fetch_one, read, write
from provisioning.validate import BadInput
from tollgate.reservations import Reservations

ADJUST_HELP = ("amount added to the account's available funds (negative takes funds away): "
               "a debit account's balance rises by it, a credit account's (and its customer's) "
               "owed balance falls by it")


def show(conn: psycopg.Connection, account: str, client: redis.Redis | None = None) -> Row:
    """Balance, limits, what live calls hold and what is available now (billing.money's
    rule over PostgreSQL's balances and Redis's holds; without Redis, holds go uncounted)."""
    row = fetch_one(conn, "SELECT a.id AS account, a.customer_id, a.billing_model, a.balance,"
                          " a.credit_limit, c.name AS customer, c.currency,"
                          " c.balance AS customer_balance, c.credit_limit AS customer_credit_limit"
                          " FROM accounts a JOIN customers c ON c.id = a.customer_id"
                          " WHERE a.id = %s", (account,))
    if row is None:
        raise BadInput(f"unknown account {account}")
    customer_id = row.pop("customer_id")
    held = _held(client, row["account"], customer_id)
    row["held"], row["customer_held"] = held or (None, None)
    bounds = money.bounds(row, {"credit_limit": row["customer_credit_limit"]})
    funds = money.Funds(bounds, (row["balance"], row["customer_balance"]), held or (ZERO, ZERO))
    row["available"] = money.available(funds)
    if held is None:
        row["note"] = "Redis unreachable: available does not count funds held by calls in progress"
    return row


def _held(client: redis.Redis | None, account: str,
          customer_id: int) -> tuple[Decimal, Decimal] | None:
    """What live calls hold on the account's and the customer's balance; None without Redis."""
    if client is None:
        return None
    try:
        resv = Reservations(client)
        return resv.held(money.ACCOUNT, account), resv.held(money.CUSTOMER, customer_id)
    except redis.RedisError:
        return None


def adjust(conn: psycopg.Connection, account: str, amount: object,
           comment: str = "") -> tuple[loader.Changes, Row]:
    """Apply a manual adjustment and record it; returns the changes and the new balance."""
    value = v.money("amount", amount, negative=True)
    changes, result, _ = add_funds(conn, account, value, "adjust",
                                   v.short_text("comment", comment, 500))
    return changes, result


def add_funds(conn: psycopg.Connection, account: str, funds: Decimal, kind: str,
              comment: str, currency: str | None = None
              ) -> tuple[loader.Changes, Row, int]:
    """Add `funds` to what the account may spend (negative takes them away) and record the
    balance operation `kind`; returns the Redis changes, the new balance and the
    operation's id. With `currency`, refused unless the account's customer uses it."""
    row = fetch_one(conn, "SELECT a.id, a.billing_model, a.customer_id, c.currency"
                          " FROM accounts a JOIN customers c ON c.id = a.customer_id"
                          " WHERE a.id = %s FOR UPDATE OF a", (account,))
    if row is None:
        raise BadInput(f"unknown account {account}")
    if currency is not None and currency != row["currency"]:
        raise BadInput(f"account {account} is in {row['currency']}, not {currency}")
    # a credit balance is what is owed: adding funds lowers it, for the customer too
    delta = funds if row["billing_model"] == "debit" else -funds
    after = conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s"
                         " RETURNING balance", (delta, row["id"])).fetchone()[0]  # type: ignore[index]
    changes = loader.account_changes(conn, row["id"])
    if row["billing_model"] == "credit":
        conn.execute("UPDATE customers SET balance = balance + %s WHERE id = %s",
                     (delta, row["customer_id"]))
        changes.merge(loader.customer_changes(conn, row["customer_id"]))
    operation = conn.execute(
        "INSERT INTO balance_operations (account_id, customer_id, kind, amount, currency,"
        " balance_after, comment) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (row["id"], row["customer_id"], kind, delta, row["currency"], after, comment)
    ).fetchone()[0]  # type: ignore[index]
    return changes, {"account": row["id"], "balance": after,
                     "change": loader.money(delta)}, operation


def _transfer(ctx: Context, a: Any) -> int:
    from provisioning import transfers  # it credits through add_funds, above

    minimum = v.money("minimum", a.minimum)
    return write(ctx, lambda c: transfers.transfer(c, a.donor, a.recipient, minimum))


def _show(ctx: Context, account: str) -> int:
    client = ctx.redis()
    try:
        return read(ctx, lambda c: show(c, account, client))
    finally:
        client.close()


def register(sub: Any) -> None:
    """Add the balance command group."""
    actions = sub.add_parser("balance", help="account balances").add_subparsers(
        dest="action", required=True)
    p = actions.add_parser("show", help="an account's balance, funds held by live calls and "
                                        "what is available")
    p.add_argument("account")
    p.set_defaults(func=lambda ctx, a: _show(ctx, a.account))
    p = actions.add_parser("adjust", help="add or take funds (writes a balance operation)")
    p.add_argument("account")
    p.add_argument("amount", help=ADJUST_HELP)
    p.add_argument("--comment", default="", help="why (kept with the operation)")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: adjust(c, a.account, a.amount,
                                                                   a.comment)))
    p = actions.add_parser("transfer", help="move an unused prepaid card's whole balance to "
                                            "an account of the same product and currency")
    p.add_argument("donor", help="the debit account (card) that gives all it holds")
    p.add_argument("recipient")
    p.add_argument("--minimum", default="0", help="refused when the donor holds less")
    p.set_defaults(func=_transfer)
