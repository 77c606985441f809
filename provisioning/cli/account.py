"""tollgate account ...: accounts (phone number, SIP ID or card number) of a customer."""
from __future__ import annotations

from functools import partial
from typing import Any

import psycopg

from provisioning import loader
from provisioning import validate as v
from provisioning.cli.app import auth_code_lengths
from provisioning.cli.common import (
    Row,
    Spec,
    add_options,
    fetch,
    fetch_one,
    given,
    id_by_name,
    insert,
    pick,
    read,
    update,
    write,
)
from provisioning.validate import BadInput
from tollgate import keyspace

FOLLOW_ME_ORDERS = ("sequential", "simultaneous")
ANSWERING = ("ring", "ring_then_voicemail", "forward", "forward_then_voicemail", "voicemail")
FIELDS = {
    "customer": "customer name (required on create)",
    "product": "product name (required on create)",
    "password": "SIP password (digest authentication)",
    "service_password": "password the IVR may ask for",
    "associated_number": "shared first part of the auth ID <associated number>#<PIN> ('' = none)",
    "ivr_app": "voice application paid calls go through ('' = none)",
    "language": "prompt language ('' = the customer's)",
    "blocked": "true: no calls",
    "billing_model": "debit (balance = funds) or credit (balance = owed)",
    "balance": "opening balance (create only; later use `tollgate balance adjust`)",
    "credit_limit": "credit accounts: most the account may owe ('' = unlimited)",
    "answering_mode": "/".join(ANSWERING),
    "follow_me": "forward modes: numbers in ring order, each <number>[/<seconds>] (default 20)",
    "follow_me_order": "/".join(FOLLOW_ME_ORDERS) + ": one after the other, or all at once",
    "expires": "ISO time after which the account is unusable ('' = never)",
    "outgoing_ddi": "caller ID of its external calls, over the customer's ('' = the customer's)",
    "voicemail_email": "where each new voicemail message is e-mailed, WAV attached ('' = none)",
    "voicemail_max_messages": "voicemail messages kept, new and saved (1-10000, default 100)",
    "voicemail_max_seconds": "longest voicemail message, seconds (10-3600, default 180)",
    "voicemail_pin_required": "true: the owner calling from the number keys the service "
                              "password too",
}
VALIDATORS: dict[str, Any] = {
    "password": partial(v.short_text, "password", limit=128),
    "service_password": partial(v.short_text, "service password"),
    "associated_number": v.associated_number,
    "language": v.language,
    "blocked": partial(v.boolean, "blocked"),
    "billing_model": partial(v.choice, "billing model", choices=("debit", "credit")),
    "balance": partial(v.money, "balance", negative=True),
    "credit_limit": partial(v.optional_money, "credit limit"),
    "answering_mode": partial(v.choice, "answering mode", choices=ANSWERING),
    "follow_me": v.follow_me,
    "follow_me_order": partial(v.choice, "follow-me order", choices=FOLLOW_ME_ORDERS),
    "expires": partial(v.timestamp, "expiry"),
    "outgoing_ddi": v.ddi,
    "voicemail_email": v.email,
    "voicemail_max_messages": partial(v.whole_number, "voicemail max messages", low=1,
                                      high=10000),
    "voicemail_max_seconds": partial(v.whole_number, "voicemail max seconds", low=10,
                                     high=3600),
    "voicemail_pin_required": partial(v.boolean, "voicemail PIN required"),
}
COLUMNS = ("a.id, c.name AS customer, p.name AS product, a.password, a.service_password, "
           "a.associated_number, i.name AS ivr_app, a.language, a.blocked, a.billing_model, "
           "a.balance, a.credit_limit, a.answering_mode, a.follow_me, a.follow_me_order, "
           "a.expires, a.first_use, "
           "a.outgoing_ddi, a.voicemail_email, a.voicemail_max_messages, a.voicemail_max_seconds, "
           "a.voicemail_pin_required")
FROM = ("FROM accounts a JOIN customers c ON c.id = a.customer_id"
        " JOIN products p ON p.id = a.product_id"
        " LEFT JOIN voice_applications i ON i.id = a.ivr_app_id")


def claim_id(conn: psycopg.Connection, ident: str, kind: str) -> None:
    """Reserve an ID in the account/alias namespace; the primary key settles races."""
    if conn.execute("INSERT INTO ids (id, kind) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING id", (ident, kind)).fetchone():
        return
    row = conn.execute("SELECT kind FROM ids WHERE id = %s", (ident,)).fetchone()
    other = row[0] if row else kind
    raise BadInput(f"{kind} {ident} already exists" + ("" if other == kind else f" as an {other}"))


def account_row(conn: psycopg.Connection, ident: object, lock: bool = False) -> Row:
    query = "SELECT * FROM accounts WHERE id = %s" + (" FOR UPDATE" if lock else "")
    row = fetch_one(conn, query, (str(ident),))
    if row is None:
        raise BadInput(f"unknown account {ident}")
    return row


def _references(conn: psycopg.Connection, spec: Spec) -> Spec:
    """customer/product/ivr_app names -> ids."""
    values: Spec = {}
    if "customer" in spec:
        values["customer_id"] = id_by_name(conn, "customers", "customer", spec["customer"])
    if "product" in spec:
        values["product_id"] = id_by_name(conn, "products", "product", spec["product"])
    if "ivr_app" in spec:
        app = spec["ivr_app"]
        values["ivr_app_id"] = (id_by_name(conn, "voice_applications", "voice application", app)
                                if app else None)
    return values


def _values(conn: psycopg.Connection, spec: Spec) -> Spec:
    unknown = set(spec) - set(FIELDS)
    if unknown:
        raise BadInput(f"account: unknown field {sorted(unknown)[0]!r}")
    plain = {k: val for k, val in spec.items() if k not in ("customer", "product", "ivr_app")}
    return {**pick(plain, VALIDATORS), **_references(conn, spec)}


def check_account(conn: psycopg.Connection, account_id: str) -> None:
    """Cross-row rules: product and customer share a currency; PIN aliases still fit."""
    row = fetch_one(conn, "SELECT a.associated_number, c.currency AS cc, p.currency AS pc,"
                          " c.name AS cn, p.name AS pn, i.settings"
                          " FROM accounts a JOIN customers c ON c.id = a.customer_id"
                          " JOIN products p ON p.id = a.product_id"
                          " LEFT JOIN voice_applications i ON i.id = a.ivr_app_id WHERE a.id = %s",
                    (account_id,))
    assert row is not None
    if row["cc"] != row["pc"]:
        raise BadInput(f"account {account_id}: product {row['pn']!r} is in {row['pc']}, "
                       f"customer {row['cn']!r} in {row['cc']}")
    low, high = auth_code_lengths(row["settings"])
    for (alias,) in conn.execute("SELECT id FROM aliases WHERE account_id = %s", (account_id,)):
        v.check_pin_alias(alias, row["associated_number"], low, high)
    ddi = conn.execute("SELECT outgoing_ddi, customer_id FROM accounts WHERE id = %s",
                       (account_id,)).fetchone()
    if ddi is not None and ddi[0] and not number_of(conn, ddi[0], ddi[1]):
        raise BadInput(f"account {account_id}: outgoing DDI {ddi[0]} is not one of its "
                       "customer's numbers (an account or alias of that customer)")


def number_of(conn: psycopg.Connection, number: str, customer_id: int) -> bool:
    """True when `number` is an account or alias of the customer (a DDI it may present)."""
    return conn.execute(
        "SELECT 1 FROM accounts WHERE id = %s AND customer_id = %s UNION ALL"
        " SELECT 1 FROM aliases l JOIN accounts a ON a.id = l.account_id"
        " WHERE l.id = %s AND a.customer_id = %s", (number, customer_id, number, customer_id)
    ).fetchone() is not None


def create(conn: psycopg.Connection, ident: object, spec: Spec) -> loader.Changes:
    """Insert an account (customer and product required)."""
    account_id = v.account_id(ident)
    values = _values(conn, spec)
    for needed in ("customer_id", "product_id"):
        if needed not in values:
            raise BadInput(f"account {account_id}: --{needed[:-3]} is required")
    claim_id(conn, account_id, "account")
    insert(conn, "accounts", {"id": account_id, **values})
    check_account(conn, account_id)
    return loader.account_changes(conn, account_id)


def change(conn: psycopg.Connection, ident: object, spec: Spec) -> loader.Changes:
    """Update an account; the balance only moves through `balance adjust`."""
    row = account_row(conn, ident, lock=True)
    if "balance" in spec:
        raise BadInput("use `tollgate balance adjust` to change a balance")
    update(conn, "accounts", "id", row["id"], _values(conn, spec))
    check_account(conn, row["id"])
    return loader.account_changes(conn, row["id"])


def remove(conn: psycopg.Connection, ident: object) -> loader.Changes:
    """Delete an account together with its aliases."""
    row = account_row(conn, ident, lock=True)
    changes = loader.Changes()
    deleted = conn.execute("DELETE FROM aliases WHERE account_id = %s RETURNING id", (row["id"],))
    for (alias,) in deleted.fetchall():
        conn.execute("DELETE FROM ids WHERE id = %s", (alias,))
        changes.remove(keyspace.alias(alias))
    conn.execute("DELETE FROM accounts WHERE id = %s", (row["id"],))
    conn.execute("DELETE FROM ids WHERE id = %s", (row["id"],))
    changes.merge(loader.account_changes(conn, row["id"]))
    return changes


def exists(conn: psycopg.Connection, ident: str) -> bool:
    return conn.execute("SELECT 1 FROM accounts WHERE id = %s", (ident,)).fetchone() is not None


def show(conn: psycopg.Connection, ident: object) -> Row:
    row = fetch_one(conn, f"SELECT {COLUMNS} {FROM} WHERE a.id = %s", (str(ident),))
    if row is None:
        raise BadInput(f"unknown account {ident}")
    row["aliases"] = [r[0] for r in conn.execute(
        "SELECT id FROM aliases WHERE account_id = %s ORDER BY id", (row["id"],))]
    return row


def listing(conn: psycopg.Connection, customer: str | None) -> list[Row]:
    cols = ("a.id, c.name AS customer, p.name AS product, a.associated_number, i.name AS ivr_app, "
            "a.billing_model, a.balance, a.blocked")
    if customer is None:
        return fetch(conn, f"SELECT {cols} {FROM} ORDER BY a.id")
    cid = id_by_name(conn, "customers", "customer", customer)
    return fetch(conn, f"SELECT {cols} {FROM} WHERE a.customer_id = %s ORDER BY a.id", (cid,))


def register(sub: Any) -> None:
    """Add the account command group."""
    group = sub.add_parser("account", help="accounts")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="create an account")
    p.add_argument("id")
    add_options(p, FIELDS)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.id, given(a, FIELDS)), f"created account {a.id}")))
    p = actions.add_parser("update", help="change an account")
    p.add_argument("id")
    add_options(p, {k: h for k, h in FIELDS.items() if k != "balance"})
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.id, given(a, FIELDS)), f"updated account {a.id}")))
    p = actions.add_parser("delete", help="delete an account and its aliases")
    p.add_argument("id")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.id), f"deleted account {a.id}")))
    p = actions.add_parser("show", help="one account")
    p.add_argument("id")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.id)))
    p = actions.add_parser("list", help="accounts")
    p.add_argument("--customer", help="only this customer's")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: listing(c, a.customer)))
