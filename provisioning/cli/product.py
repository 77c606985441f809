"""tollgate product ...: products and their rating entries (access code -> tariff)."""
from __future__ import annotations

from functools import partial
from typing import Any

import psycopg

from provisioning import loader
from provisioning import validate as v
from provisioning.cli.common import Row, Spec, fetch, fetch_one, insert, pick, read, update, write
from provisioning.cli.tariff import tariff_row
from provisioning.validate import BadInput

VALIDATORS: dict[str, Any] = {"name": partial(v.name, "product"), "currency": v.currency,
                              "rounding_amount": partial(v.money, "rounding amount")}
ROUNDING_HELP = ("a balance below this counts as out of funds (prepaid low-balance "
                 "restriction; default 0.01)")
RATING_HELP = ("rating entry TARIFF (plain calls) or ACCESS_CODE=TARIFF (IN, FIRSTCALL, "
               "LEG_A.<dnis> ...); repeat for more; on update replaces all entries")


def product_row(conn: psycopg.Connection, name: object, lock: bool = False) -> Row:
    query = ("SELECT id, name, currency, rounding_amount FROM products WHERE name = %s"
             + (" FOR UPDATE" if lock else ""))
    row = fetch_one(conn, query, (str(name),))
    if row is None:
        raise BadInput(f"unknown product {name!r}")
    return row


def parse_rating(items: list[Any]) -> list[tuple[str, str]]:
    """Entries as (access code, tariff name): 'TARIFF', 'CODE=TARIFF' or {access_code, tariff}."""
    entries = []
    for item in items:
        if isinstance(item, dict):
            if set(item) - {"access_code", "tariff"} or "tariff" not in item:
                raise BadInput(f"rating entry {item!r}: keys access_code and tariff expected")
            code, tariff = item.get("access_code") or "", item["tariff"]
        elif isinstance(item, str):
            code, eq, tariff = item.partition("=")
            if not eq:
                code, tariff = "", item
        else:
            raise BadInput(f"rating entry {item!r}: 'TARIFF' or 'CODE=TARIFF' expected")
        entries.append((v.access_code(code.strip()), str(tariff).strip()))
    codes = [code for code, _ in entries]
    dupes = {c for c in codes if codes.count(c) > 1}
    if dupes:
        raise BadInput(f"access code {sorted(dupes)[0]!r} is given twice")
    return entries


def set_rating(conn: psycopg.Connection, product: Row, items: list[Any]) -> None:
    """Replace the product's rating entries; every tariff must be in the product's currency."""
    entries = parse_rating(items)
    conn.execute("DELETE FROM rating_entries WHERE product_id = %s", (product["id"],))
    for code, tariff_name in entries:
        tariff = tariff_row(conn, tariff_name)
        if tariff["currency"] != product["currency"]:
            raise BadInput(f"tariff {tariff_name!r} is in {tariff['currency']}, "
                           f"product {product['name']!r} in {product['currency']}")
        conn.execute("INSERT INTO rating_entries (product_id, access_code, tariff_id)"
                     " VALUES (%s, %s, %s)", (product["id"], code, tariff["id"]))


def create(conn: psycopg.Connection, name: str, spec: Spec) -> loader.Changes:
    """Insert a product with its rating entries."""
    spec = dict(spec)
    rating = spec.pop("rating", None) or []
    values = pick({"name": name, **spec}, VALIDATORS)
    if "currency" not in values:
        raise BadInput(f"product {name}: currency is required")
    if exists(conn, values["name"]):
        raise BadInput(f"product {values['name']!r} already exists")
    pid = insert(conn, "products", values)
    set_rating(conn, {"id": pid, **values}, rating)
    return loader.product_changes(conn, pid)


def change(conn: psycopg.Connection, name: str, spec: Spec) -> loader.Changes:
    """Rename a product or replace its rating entries."""
    row = product_row(conn, name, lock=True)
    spec = dict(spec)
    rating = spec.pop("rating", None)
    if "rename" in spec:
        spec["name"] = spec.pop("rename")
    values = pick(spec, VALIDATORS)
    if values.get("currency", row["currency"]) != row["currency"]:
        raise BadInput(f"product {name}: currency cannot change ({row['currency']})")
    update(conn, "products", "id", row["id"], values)
    if rating is not None:
        set_rating(conn, row, rating)
    return loader.product_changes(conn, row["id"])


def remove(conn: psycopg.Connection, name: str) -> loader.Changes:
    """Delete a product no account uses."""
    row = product_row(conn, name, lock=True)
    used = conn.execute("SELECT id FROM accounts WHERE product_id = %s LIMIT 1",
                        (row["id"],)).fetchone()
    if used:
        raise BadInput(f"product {name} is used by account {used[0]}")
    conn.execute("DELETE FROM products WHERE id = %s", (row["id"],))
    return loader.product_changes(conn, row["id"])


def exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM products WHERE name = %s", (name,)).fetchone() is not None


def show(conn: psycopg.Connection, name: str) -> Row:
    row = product_row(conn, name)
    row["rating"] = [f"{r['access_code'] or '(plain)'}={r['tariff']}" for r in fetch(
        conn, "SELECT r.access_code, t.name AS tariff FROM rating_entries r"
              " JOIN tariffs t ON t.id = r.tariff_id WHERE r.product_id = %s"
              " ORDER BY r.access_code",
        (row["id"],))]
    return row


def listing(conn: psycopg.Connection) -> list[Row]:
    return fetch(conn, "SELECT p.id, p.name, p.currency,"
                       " (SELECT count(*) FROM rating_entries r WHERE r.product_id = p.id)"
                       " AS rating_entries"
                       " FROM products p ORDER BY p.name")


def register(sub: Any) -> None:
    """Add the product command group."""
    group = sub.add_parser("product", help="products")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="create a product")
    p.add_argument("name")
    p.add_argument("--currency", required=True)
    p.add_argument("--rating", action="append", metavar="[CODE=]TARIFF", help=RATING_HELP)
    p.add_argument("--rounding-amount", metavar="AMOUNT", help=ROUNDING_HELP)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.name, {"currency": a.currency, "rating": a.rating or [],
                           **({"rounding_amount": a.rounding_amount}
                              if a.rounding_amount is not None else {})}),
        f"created product {a.name}")))
    p = actions.add_parser("update", help="change a product")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW")
    p.add_argument("--rating", action="append", metavar="[CODE=]TARIFF", help=RATING_HELP)
    p.add_argument("--no-rating", action="store_true", help="remove every rating entry")
    p.add_argument("--rounding-amount", metavar="AMOUNT", help=ROUNDING_HELP)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.name, _update_spec(a)), f"updated product {a.name}")))
    p = actions.add_parser("delete", help="delete a product")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.name), f"deleted product {a.name}")))
    p = actions.add_parser("show", help="one product")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.name)))
    p = actions.add_parser("list", help="all products")
    p.set_defaults(func=lambda ctx, a: read(ctx, listing))


def _update_spec(args: Any) -> Spec:
    spec: Spec = {}
    if args.rename is not None:
        spec["rename"] = args.rename
    if args.rounding_amount is not None:
        spec["rounding_amount"] = args.rounding_amount
    if args.no_rating:
        spec["rating"] = []
    elif args.rating is not None:
        spec["rating"] = args.rating
    return spec
