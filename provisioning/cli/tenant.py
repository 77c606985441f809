"""tollgate import FILE.yaml: a whole tenant in one transaction (format: demo/smart-calls.yaml).

Entities that exist are updated to match the file (so importing twice is harmless);
the rates of each listed tariff are replaced by the file's.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from provisioning import loader
from provisioning import validate as v
from provisioning.cli import account, alias, app, customer, product, profile, tariff
from provisioning.cli.common import Context, write
from provisioning.validate import BadInput

SECTIONS = ("customers", "tariffs", "products", "apps", "accounts")


def load_file(path: str) -> dict[str, Any]:
    """The YAML document, checked for its top-level shape."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise BadInput(f"{path}:{where} is not valid YAML") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a map with {', '.join(SECTIONS)} expected")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise BadInput(f"{path}: unknown section {sorted(unknown)[0]!r}")
    for section in SECTIONS:
        items = data.get(section) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BadInput(f"{path}: {section} must be a list of maps")
    return data


def import_tenant(conn: psycopg.Connection, data: dict[str, Any]) -> loader.Changes:
    """Create or update everything in data inside the caller's transaction."""
    changes = loader.Changes()
    steps: list[tuple[str, str, Callable[[psycopg.Connection, dict[str, Any]], loader.Changes]]] = [
        ("customers", "name", _customer), ("tariffs", "name", _tariff),
        ("products", "name", _product), ("apps", "name", _app), ("accounts", "id", _account)]
    # rating profiles name products: set once the products exist
    profiles = [(str(i.get("name")), i["rating_profiles"])
                for i in data.get("customers") or [] if "rating_profiles" in i]
    for section, key, step in steps:
        for item in data.get(section) or []:
            label = item.get(key)
            if label is None:
                raise BadInput(f"{section}: an entry has no {key}")
            try:
                changes.merge(step(conn, dict(item)))
            except BadInput as exc:
                raise BadInput(f"{section} {label}: {exc}") from None
    for name, entries in profiles:
        try:
            changes.merge(profile.replace_all(conn, name, entries))
        except BadInput as exc:
            raise BadInput(f"customers {name}: {exc}") from None
    # a customer's outgoing DDI is one of its numbers: checked once its accounts exist
    for item in data.get("customers") or []:
        if item.get("outgoing_ddi"):
            row = conn.execute("SELECT id FROM customers WHERE name = %s",
                               (str(item["name"]),)).fetchone()
            if row is not None:
                customer.check_ddi(conn, row[0])
    return changes


def _customer(conn: psycopg.Connection, item: dict[str, Any]) -> loader.Changes:
    name = str(item.pop("name"))
    item.pop("rating_profiles", None)  # set by import_tenant once the products exist
    if customer.exists(conn, name):
        return customer.change(conn, name, item, check=False)
    return customer.create(conn, name, item, check=False)


def _tariff(conn: psycopg.Connection, item: dict[str, Any]) -> loader.Changes:
    name = str(item.pop("name"))
    rates = item.pop("rates", None) or []
    if not isinstance(rates, list) or not all(isinstance(r, dict) for r in rates):
        raise BadInput("rates must be a list of maps")
    made = tariff.exists(conn, name)
    changes = tariff.change(conn, name, item) if made else tariff.create(conn, name, item)
    tid = tariff.tariff_row(conn, name)["id"]
    wanted = [v.prefix(r.get("prefix", "")) for r in rates]
    if len(set(wanted)) != len(wanted):
        raise BadInput("a prefix is listed twice")
    existing = conn.execute("SELECT prefix FROM rates WHERE tariff_id = %s", (tid,)).fetchall()
    for (prefix,) in existing:
        if prefix not in wanted:
            changes.merge(tariff.remove_rate(conn, name, prefix))
    for rate in rates:
        spec = {k: val for k, val in rate.items() if k != "prefix"}
        try:
            changes.merge(tariff.set_rate(conn, name, rate.get("prefix", ""), spec))
        except BadInput as exc:
            raise BadInput(f"rate {rate.get('prefix', '')!r}: {exc}") from None
    return changes


def _product(conn: psycopg.Connection, item: dict[str, Any]) -> loader.Changes:
    name = str(item.pop("name"))
    if product.exists(conn, name):
        return product.change(conn, name, item)
    return product.create(conn, name, item)


def _app(conn: psycopg.Connection, item: dict[str, Any]) -> loader.Changes:
    name = str(item.pop("name"))
    if app.exists(conn, name):
        # the file states the whole settings map: unlisted options go back to defaults
        item.setdefault("access_numbers", [])
        return app.change(conn, name, item, merge=False)
    return app.create(conn, name, item)


def _account(conn: psycopg.Connection, item: dict[str, Any]) -> loader.Changes:
    ident = v.account_id(item.pop("id"))
    aliases = item.pop("aliases", None) or []
    if not isinstance(aliases, list):
        raise BadInput("aliases must be a list")
    ddi = item.pop("outgoing_ddi", None)  # may be one of the aliases below: set after them
    if account.exists(conn, ident):
        item.pop("balance", None)  # an existing balance moves only through balance operations
        changes = account.change(conn, ident, item)
    else:
        changes = account.create(conn, ident, item)
    for entry in aliases:
        spec = dict(entry) if isinstance(entry, dict) else {"id": entry}
        alias_id = v.alias_id(spec.pop("id", None) or "")
        spec["account"] = ident
        found = alias.exists(conn, alias_id)
        if found and found["account_id"] != ident:
            raise BadInput(f"alias {alias_id} already exists on account {found['account_id']}")
        changes.merge(alias.change(conn, alias_id, spec) if found
                      else alias.create(conn, alias_id, spec))
    if ddi is not None:
        changes.merge(account.change(conn, ident, {"outgoing_ddi": ddi}))
    return changes


def register(sub: Any) -> None:
    """Add `tollgate import FILE`."""
    p = sub.add_parser("import", help="create or update a whole tenant from a YAML file")
    p.add_argument("file")
    p.set_defaults(func=run)


def run(ctx: Context, args: Any) -> int:
    data = load_file(args.file)
    for item in data.get("customers") or []:
        try:
            customer.check_media_set(ctx.settings, item)
        except BadInput as exc:
            raise BadInput(f"customers {item.get('name')}: {exc}") from None
    return write(ctx, lambda conn: (import_tenant(conn, data), f"imported {args.file}"))
