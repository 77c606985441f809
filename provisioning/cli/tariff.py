"""tollgate tariff ... and tollgate rate ...: tariffs and their per-prefix rates."""
from __future__ import annotations

from functools import partial
from typing import Any

import psycopg

from provisioning import loader
from provisioning import validate as v
from provisioning.cli.common import (
    Row,
    Spec,
    add_options,
    fetch,
    fetch_one,
    given,
    insert,
    pick,
    read,
    update,
    update_where,
    write,
)
from provisioning.validate import BadInput

TARIFF_VALIDATORS: dict[str, Any] = {"name": partial(v.name, "tariff"), "currency": v.currency}
RATE_FIELDS = {
    "price": "price per minute of the first interval (and of the next ones unless --price-next)",
    "price_next": "price per minute of the next intervals",
    "interval": "charging intervals in seconds, first/next (60/60, 1/1) or one number",
    "connect_fee": "charged once when the call connects",
    "free_seconds": "seconds not charged at the start of the call",
    "forbidden": "true: calls to this prefix are refused",
}
RATE_COLS = ("prefix, price_first, price_next, interval_first, interval_next, connect_fee, "
             "free_seconds, forbidden")


def tariff_row(conn: psycopg.Connection, name: object, lock: bool = False) -> Row:
    """id and currency of a tariff by name, else BadInput."""
    query = ("SELECT id, name, currency FROM tariffs WHERE name = %s"
             + (" FOR UPDATE" if lock else ""))
    row = fetch_one(conn, query, (str(name),))
    if row is None:
        raise BadInput(f"unknown tariff {name!r}")
    return row


def create(conn: psycopg.Connection, name: str, spec: Spec) -> loader.Changes:
    """Insert an empty tariff (currency required)."""
    values = pick({"name": name, **spec}, TARIFF_VALIDATORS)
    if "currency" not in values:
        raise BadInput(f"tariff {name}: currency is required")
    if exists(conn, values["name"]):
        raise BadInput(f"tariff {values['name']!r} already exists")
    return loader.tariff_changes(conn, insert(conn, "tariffs", values))


def change(conn: psycopg.Connection, name: str, spec: Spec) -> loader.Changes:
    """Rename a tariff (its currency is fixed: products rate in it)."""
    row = tariff_row(conn, name, lock=True)
    spec = dict(spec)
    if "rename" in spec:
        spec["name"] = spec.pop("rename")
    values = pick(spec, TARIFF_VALIDATORS)
    if values.get("currency", row["currency"]) != row["currency"]:
        raise BadInput(f"tariff {name}: currency cannot change ({row['currency']})")
    update(conn, "tariffs", "id", row["id"], values)
    return loader.tariff_changes(conn, row["id"])


def remove(conn: psycopg.Connection, name: str) -> loader.Changes:
    """Delete a tariff and its rates unless a product rates by it."""
    row = tariff_row(conn, name, lock=True)
    used = conn.execute("SELECT p.name FROM rating_entries r JOIN products p ON p.id = r.product_id"
                        " WHERE r.tariff_id = %s LIMIT 1", (row["id"],)).fetchone()
    if used:
        raise BadInput(f"tariff {name} is used by product {used[0]!r}")
    conn.execute("DELETE FROM tariffs WHERE id = %s", (row["id"],))
    return loader.tariff_changes(conn, row["id"])


def exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM tariffs WHERE name = %s", (name,)).fetchone() is not None


def show(conn: psycopg.Connection, name: str) -> Row:
    row = tariff_row(conn, name)
    row["rates"] = conn.execute("SELECT count(*) FROM rates WHERE tariff_id = %s",
                                (row["id"],)).fetchone()[0]  # type: ignore[index]
    return row


def listing(conn: psycopg.Connection) -> list[Row]:
    return fetch(conn, "SELECT t.id, t.name, t.currency,"
                       " (SELECT count(*) FROM rates r WHERE r.tariff_id = t.id) AS rates"
                       " FROM tariffs t ORDER BY t.name")


def rate_values(spec: Spec, current: Row | None = None) -> Spec:
    """Rate columns from operator input; price and interval required for a new rate."""
    unknown = set(spec) - set(RATE_FIELDS)
    if unknown:
        raise BadInput(f"unknown rate field {sorted(unknown)[0]!r}")
    if current is None and "price" not in spec:
        raise BadInput("a rate needs a price (per minute)")
    values: Spec = {}
    if "price" in spec:
        values["price_first"] = values["price_next"] = v.money("price", spec["price"])
    if "price_next" in spec:
        values["price_next"] = v.money("next price", spec["price_next"])
    if "interval" in spec or current is None:
        values["interval_first"], values["interval_next"] = v.intervals(
            spec.get("interval", "60/60"))
    if "connect_fee" in spec:
        values["connect_fee"] = v.money("connect fee", spec["connect_fee"])
    if "free_seconds" in spec:
        values["free_seconds"] = v.seconds("free seconds", spec["free_seconds"])
    if "forbidden" in spec:
        values["forbidden"] = v.boolean("forbidden", spec["forbidden"])
    return values


def set_rate(conn: psycopg.Connection, tariff: str, prefix: object, spec: Spec,
             create_only: bool = False) -> loader.Changes:
    """Create or update the rate of one prefix."""
    tid = tariff_row(conn, tariff)["id"]
    pfx = v.prefix(prefix)
    current = fetch_one(conn, "SELECT * FROM rates WHERE tariff_id = %s AND prefix = %s FOR UPDATE",
                        (tid, pfx))
    if current is not None and create_only:
        raise BadInput(f"tariff {tariff} already has a rate for prefix {pfx!r}")
    values = rate_values(spec, current)
    if current is None:
        insert(conn, "rates", {"tariff_id": tid, "prefix": pfx, **values}, returning="prefix")
    else:
        update_where(conn, "rates", {"tariff_id": tid, "prefix": pfx}, values)
    return loader.rate_changes(conn, tid, pfx)


def change_rate(conn: psycopg.Connection, tariff: str, prefix: object,
                spec: Spec) -> loader.Changes:
    """Update an existing rate."""
    tid = tariff_row(conn, tariff)["id"]
    pfx = v.prefix(prefix)
    if conn.execute("SELECT 1 FROM rates WHERE tariff_id = %s AND prefix = %s",
                    (tid, pfx)).fetchone() is None:
        raise BadInput(f"tariff {tariff} has no rate for prefix {pfx!r}")
    return set_rate(conn, tariff, pfx, spec)


def remove_rate(conn: psycopg.Connection, tariff: str, prefix: object) -> loader.Changes:
    """Delete the rate of one prefix."""
    tid = tariff_row(conn, tariff)["id"]
    pfx = v.prefix(prefix)
    if conn.execute("DELETE FROM rates WHERE tariff_id = %s AND prefix = %s RETURNING 1",
                    (tid, pfx)).fetchone() is None:
        raise BadInput(f"tariff {tariff} has no rate for prefix {pfx!r}")
    return loader.rate_changes(conn, tid, pfx)


def show_rate(conn: psycopg.Connection, tariff: str, prefix: object) -> Row:
    tid = tariff_row(conn, tariff)["id"]
    row = fetch_one(conn, f"SELECT {RATE_COLS} FROM rates WHERE tariff_id = %s AND prefix = %s",
                    (tid, v.prefix(prefix)))
    if row is None:
        raise BadInput(f"tariff {tariff} has no rate for prefix {prefix!r}")
    return row


def list_rates(conn: psycopg.Connection, tariff: str) -> list[Row]:
    tid = tariff_row(conn, tariff)["id"]
    return fetch(conn, f"SELECT {RATE_COLS} FROM rates WHERE tariff_id = %s ORDER BY prefix",
                 (tid,))


def register(sub: Any) -> None:
    """Add the tariff and rate command groups."""
    _register_tariff(sub)
    _register_rate(sub)


def _register_tariff(sub: Any) -> None:
    group = sub.add_parser("tariff", help="tariffs")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="create a tariff")
    p.add_argument("name")
    p.add_argument("--currency", required=True)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.name, {"currency": a.currency}), f"created tariff {a.name}")))
    p = actions.add_parser("update", help="rename a tariff")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.name, given(a, ["rename"])), f"updated tariff {a.name}")))
    p = actions.add_parser("delete", help="delete a tariff and its rates")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.name), f"deleted tariff {a.name}")))
    p = actions.add_parser("show", help="one tariff")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.name)))
    p = actions.add_parser("list", help="all tariffs")
    p.set_defaults(func=lambda ctx, a: read(ctx, listing))


def _register_rate(sub: Any) -> None:
    group = sub.add_parser("rate", help="rates of a tariff")
    actions = group.add_subparsers(dest="action", required=True)
    for action, helptext in (("create", "add a rate"), ("update", "change a rate")):
        p = actions.add_parser(action, help=helptext)
        p.add_argument("tariff")
        p.add_argument("prefix")
        add_options(p, RATE_FIELDS)
    actions.choices["create"].set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        set_rate(c, a.tariff, a.prefix, given(a, RATE_FIELDS), create_only=True),
        f"created rate {a.prefix!r} in tariff {a.tariff}")))
    actions.choices["update"].set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change_rate(c, a.tariff, a.prefix, given(a, RATE_FIELDS)),
        f"updated rate {a.prefix!r} in tariff {a.tariff}")))
    p = actions.add_parser("delete", help="delete a rate")
    p.add_argument("tariff")
    p.add_argument("prefix")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove_rate(c, a.tariff, a.prefix), f"deleted rate {a.prefix!r} in tariff {a.tariff}")))
    p = actions.add_parser("show", help="one rate")
    p.add_argument("tariff")
    p.add_argument("prefix")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show_rate(c, a.tariff, a.prefix)))
    p = actions.add_parser("list", help="the rates of a tariff")
    p.add_argument("tariff")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: list_rates(c, a.tariff)))
