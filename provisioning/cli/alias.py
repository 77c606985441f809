"""tollgate alias ...: other IDs of an account (1778555#4545, 42073723123@pstn, ani44...)."""
from __future__ import annotations

from typing import Any

import psycopg

from provisioning import loader
from provisioning import validate as v
from provisioning.cli.account import account_row, claim_id
from provisioning.cli.app import auth_code_lengths
from provisioning.cli.common import Row, Spec, fetch, fetch_one, read, write
from provisioning.validate import BadInput

FIELDS = {"account": "the account this alias belongs to",
          "allow_auth": "true: may REGISTER / digest-authenticate (default false)"}


def alias_row(conn: psycopg.Connection, ident: object, lock: bool = False) -> Row:
    query = "SELECT * FROM aliases WHERE id = %s" + (" FOR UPDATE" if lock else "")
    row = fetch_one(conn, query, (str(ident),))
    if row is None:
        raise BadInput(f"unknown alias {ident}")
    return row


def check_pin(conn: psycopg.Connection, alias: str, account_id: str) -> None:
    """A #PIN alias must match the account's associated number and its app's PIN length."""
    if v.pin_parts(alias) is None:
        return
    row = fetch_one(conn, "SELECT a.associated_number, i.settings FROM accounts a"
                          " LEFT JOIN voice_applications i ON i.id = a.ivr_app_id WHERE a.id = %s",
                    (account_id,))
    assert row is not None
    low, high = auth_code_lengths(row["settings"])
    v.check_pin_alias(alias, row["associated_number"], low, high)


def check_domain(conn: psycopg.Connection, alias: str, account_id: str) -> None:
    """An extension in a client's SIP domain (<extension>@<domain>) is one of its own
    accounts' aliases."""
    _, at, domain = alias.partition("@")
    if not at:
        return
    owner = fetch_one(conn, "SELECT id, name FROM customers WHERE sip_domain = %s", (domain,))
    if owner is None:
        return
    mine = fetch_one(conn, "SELECT 1 AS ok FROM accounts WHERE id = %s AND customer_id = %s",
                     (account_id, owner["id"]))
    if mine is None:
        raise BadInput(f"alias {alias}: {domain} is the SIP domain of customer {owner['name']}, "
                       f"and account {account_id} is not one of its accounts")


def create(conn: psycopg.Connection, ident: object, spec: Spec) -> loader.Changes:
    """Insert an alias of an existing account."""
    _known(spec)
    alias = v.alias_id(ident)
    if not spec.get("account"):
        raise BadInput(f"alias {alias}: --account is required")
    account = account_row(conn, v.account_id(spec["account"]), lock=True)
    allow = v.boolean("allow auth", spec.get("allow_auth", False))
    check_pin(conn, alias, account["id"])
    check_domain(conn, alias, account["id"])
    claim_id(conn, alias, "alias")
    conn.execute("INSERT INTO aliases (id, account_id, allow_auth) VALUES (%s, %s, %s)",
                 (alias, account["id"], allow))
    return loader.alias_changes(conn, alias)


def change(conn: psycopg.Connection, ident: object, spec: Spec) -> loader.Changes:
    """Move an alias to another account or change allow_auth."""
    _known(spec)
    row = alias_row(conn, ident, lock=True)
    account_id = row["account_id"]
    if spec.get("account") is not None:
        account_id = account_row(conn, v.account_id(spec["account"]), lock=True)["id"]
        check_pin(conn, row["id"], account_id)
        check_domain(conn, row["id"], account_id)
    allow = v.boolean("allow auth", spec.get("allow_auth", row["allow_auth"]))
    conn.execute("UPDATE aliases SET account_id = %s, allow_auth = %s WHERE id = %s",
                 (account_id, allow, row["id"]))
    return loader.alias_changes(conn, row["id"])


def _known(spec: Spec) -> None:
    unknown = set(spec) - set(FIELDS)
    if unknown:
        raise BadInput(f"alias: unknown field {sorted(unknown)[0]!r}")


def remove(conn: psycopg.Connection, ident: object) -> loader.Changes:
    """Delete an alias (and free its ID)."""
    row = alias_row(conn, ident, lock=True)
    conn.execute("DELETE FROM aliases WHERE id = %s", (row["id"],))
    conn.execute("DELETE FROM ids WHERE id = %s", (row["id"],))
    return loader.alias_changes(conn, row["id"])


def exists(conn: psycopg.Connection, ident: str) -> Row | None:
    return fetch_one(conn, "SELECT * FROM aliases WHERE id = %s", (ident,))


def show(conn: psycopg.Connection, ident: object) -> Row:
    row = alias_row(conn, ident)
    return {"id": row["id"], "account": row["account_id"], "allow_auth": row["allow_auth"]}


def listing(conn: psycopg.Connection, account: str | None) -> list[Row]:
    if account is None:
        return fetch(conn, "SELECT id, account_id AS account, allow_auth FROM aliases ORDER BY id")
    return fetch(conn, "SELECT id, account_id AS account, allow_auth FROM aliases"
                       " WHERE account_id = %s ORDER BY id", (account,))


def register(sub: Any) -> None:
    """Add the alias command group."""
    group = sub.add_parser("alias", help="aliases of accounts")
    actions = group.add_subparsers(dest="action", required=True)
    for action, helptext in (("create", "add an alias"), ("update", "change an alias")):
        p = actions.add_parser(action, help=helptext)
        p.add_argument("id")
        p.add_argument("--account", help=FIELDS["account"])
        p.add_argument("--allow-auth", dest="allow_auth", metavar="BOOL", help=FIELDS["allow_auth"])
    actions.choices["create"].set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.id, _spec(a)), f"created alias {a.id}")))
    actions.choices["update"].set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.id, _spec(a)), f"updated alias {a.id}")))
    p = actions.add_parser("delete", help="delete an alias")
    p.add_argument("id")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.id), f"deleted alias {a.id}")))
    p = actions.add_parser("show", help="one alias")
    p.add_argument("id")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.id)))
    p = actions.add_parser("list", help="aliases")
    p.add_argument("--account", help="only this account's")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: listing(c, a.account)))


def _spec(args: Any) -> Spec:
    return {k: getattr(args, k) for k in FIELDS if getattr(args, k) is not None}
