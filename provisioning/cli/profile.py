"""tollgate rating-profile add|remove|list: a virtual PBX client's rating profiles (the
products that bill its calls from an activation time, until an optional expiry; the rule
is billing/profiles.py). A time without an offset is the client's local time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg

from billing import policy as rules
from billing.daily import zone
from provisioning import loader
from provisioning import validate as v
from provisioning.cli.common import Row, fetch, fetch_one, read, write
from provisioning.cli.product import product_row
from provisioning.validate import BadInput


def _customer(conn: psycopg.Connection, name: object) -> Row:
    row = fetch_one(conn, "SELECT id, name, currency, timezone, features FROM customers"
                          " WHERE name = %s"
                          " FOR UPDATE", (str(name),))
    if row is None:
        raise BadInput(f"unknown customer {name!r}")
    return row


def _moment(kind: str, value: object, client: Row) -> datetime | None:
    when = v.timestamp(kind, value)
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=zone(client["timezone"]))
    return when


def add(conn: psycopg.Connection, customer: object, product: object, activation: object = None,
        expiry: object = None) -> loader.Changes:
    """Bill the client's calls with `product` from `activation` (default now) until
    `expiry` (default never)."""
    client = _customer(conn, customer)
    if rules.BILLING not in client["features"]:
        raise BadInput(f"customer {client['name']}: rating profiles need the billing feature")
    prod = product_row(conn, product)
    if prod["currency"] != client["currency"]:
        raise BadInput(f"product {prod['name']} bills in {prod['currency']}, customer "
                       f"{client['name']} pays in {client['currency']}")
    start = _moment("activation", activation, client) or datetime.now(timezone.utc)
    end = _moment("expiry", expiry, client)
    if end is not None and end <= start:
        raise BadInput(f"expiry {end.isoformat()} is not after activation {start.isoformat()}")
    if conn.execute("SELECT 1 FROM rating_profiles WHERE customer_id = %s AND product_id = %s"
                    " AND activation = %s", (client["id"], prod["id"], start)).fetchone():
        raise BadInput(f"customer {client['name']} already has product {prod['name']} "
                       f"from {start.isoformat()}")
    conn.execute("INSERT INTO rating_profiles (customer_id, product_id, activation, expiry)"
                 " VALUES (%s, %s, %s, %s)", (client["id"], prod["id"], start, end))
    return loader.customer_changes(conn, client["id"])


def remove(conn: psycopg.Connection, customer: object, product: object,
           activation: object = None) -> loader.Changes:
    """Drop the client's profiles of `product` (only the one from `activation` if given)."""
    client = _customer(conn, customer)
    prod = product_row(conn, product)
    start = _moment("activation", activation, client)
    deleted = conn.execute(
        "DELETE FROM rating_profiles WHERE customer_id = %s AND product_id = %s"
        " AND (%s::timestamptz IS NULL OR activation = %s)",
        (client["id"], prod["id"], start, start)).rowcount
    if not deleted:
        raise BadInput(f"customer {client['name']} has no rating profile of {prod['name']}"
                       + (f" from {start.isoformat()}" if start else ""))
    return loader.customer_changes(conn, client["id"])


def replace_all(conn: psycopg.Connection, customer: object,
                entries: object) -> loader.Changes:
    """The client's profiles become exactly `entries` (YAML: product, activation, expiry)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadInput("rating_profiles must be a list of maps (product, activation, expiry)")
    client = _customer(conn, customer)
    conn.execute("DELETE FROM rating_profiles WHERE customer_id = %s", (client["id"],))
    for entry in entries:
        unknown = set(entry) - {"product", "activation", "expiry"}
        if unknown:
            raise BadInput(f"rating profile: unknown field {sorted(unknown)[0]!r}")
        if not entry.get("product") or not entry.get("activation"):
            raise BadInput("a rating profile needs its product and activation")
        add(conn, client["name"], entry["product"], entry["activation"], entry.get("expiry"))
    return loader.customer_changes(conn, client["id"])


def listing(conn: psycopg.Connection, customer: object) -> list[Row]:
    """The client's profiles, newest activation first, with whether each is active now."""
    client = fetch_one(conn, "SELECT id FROM customers WHERE name = %s", (str(customer),))
    if client is None:
        raise BadInput(f"unknown customer {customer!r}")
    return fetch(conn, "SELECT p.name AS product, r.activation, r.expiry,"
                       " (r.activation <= now() AND (r.expiry IS NULL OR r.expiry > now()))"
                       " AS active FROM rating_profiles r JOIN products p ON p.id = r.product_id"
                       " WHERE r.customer_id = %s ORDER BY r.activation DESC, r.id DESC",
                 (client["id"],))


def register(sub: Any) -> None:
    """Add the rating-profile command group."""
    group = sub.add_parser("rating-profile", help="the products that bill a client's calls")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("add", help="bill a client's calls with a product from a time")
    p.add_argument("customer")
    p.add_argument("product")
    p.add_argument("--activation", help="ISO time it starts (default now; no offset: the "
                                        "client's timezone)")
    p.add_argument("--expiry", help="ISO time it ends (default never)")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        add(c, a.customer, a.product, a.activation, a.expiry),
        f"customer {a.customer} billed by {a.product}")))
    p = actions.add_parser("remove", help="drop a client's rating profile")
    p.add_argument("customer")
    p.add_argument("product")
    p.add_argument("--activation", help="only the profile from this time")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.customer, a.product, a.activation),
        f"customer {a.customer} no longer billed by {a.product}")))
    p = actions.add_parser("list", help="a client's rating profiles")
    p.add_argument("customer")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: listing(c, a.customer)))
