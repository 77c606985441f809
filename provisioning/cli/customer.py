"""tollgate customer create|update|delete|show|list: tenants (currency, limits, policies)."""
from __future__ import annotations

from functools import partial
from typing import Any

import psycopg

from billing import policy as rules
from provisioning import loader
from provisioning import validate as v
from provisioning.cli import account
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
    write,
)
from provisioning.validate import BadInput
from tollgate import media
from tollgate.config import Settings

FIELDS = {
    "currency": "ISO currency code (USD); fixed once the customer exists",
    "timezone": "timezone for the daily usage reset (e.g. America/Vancouver)",
    "language": "default prompt language (en)",
    "credit_limit": "most all credit accounts may owe together ('' = unlimited)",
    "blocked": "true: no calls at all",
    "max_calls": "concurrent external calls, 0 = unlimited",
    "max_daily_usage": "external spending per day before calls stop ('' = no limit)",
    "daily_usage_email": "who is told when the daily limit is reached",
    "ip_filter": "true: only calls from authorized sources / allowed countries",
    "authorized_sources": "comma-separated IPs or CIDRs allowed when ip_filter is on",
    "allowed_countries": "comma-separated country codes allowed when ip_filter is on",
    "outgoing_ddi": "caller ID used for outgoing calls",
    "media_relay_set": "rtpengine set name",
    "voice_notifications": "true: explain refused calls with a prompt",
    "recording": "true: on-demand call recording allowed",
    "features": "comma-separated features the client may use: billing, "
                "voice_notifications, recording (default all; the others are off and hidden)",
    "billing_method": "when calls are priced: postpaid (default) or none (never priced)",
    "sip_domain": "the client's own SIP domain (pbx.example.com): its accounts log in there "
                  "by their extensions, aliases <extension>@<domain> ('' = none)",
    "corporation": "clients of one corporation may call each other's extensions ('' = none)",
    "distribute_method": "how calls spread over the application servers (IVR workers): "
                         "hash (one per client, default), round_robin, static",
    "application_server": "the server (0, 1, ...) of the static distribute method",
    "on_demand_recording": "how a call asks to be recorded: disabled (default), "
                           "service_code (dialed before the number), dtmf (keyed in the "
                           "call, sent as SIP INFO)",
    "recording_service_code": "the code dialed before a number to record the call (*1)",
    "allow_recording_removal": "true: the client may delete its recordings",
}
VALIDATORS: dict[str, Any] = {
    "name": partial(v.name, "customer"),
    "currency": v.currency,
    "timezone": v.timezone,
    "language": lambda x: v.language(x) or "en",
    "credit_limit": partial(v.optional_money, "credit limit"),
    "blocked": partial(v.boolean, "blocked"),
    "max_calls": partial(v.seconds, "max calls"),
    "max_daily_usage": partial(v.optional_money, "max daily usage"),
    "daily_usage_email": v.email,
    "ip_filter": partial(v.boolean, "ip filter"),
    "authorized_sources": v.cidr_list,
    "allowed_countries": v.countries,
    "outgoing_ddi": v.ddi,
    "media_relay_set": partial(v.optional_text, "media relay set"),
    "voice_notifications": partial(v.boolean, "voice notifications"),
    "recording": partial(v.boolean, "recording"),
    "features": partial(v.subset, "feature", allowed=rules.FEATURES),
    "billing_method": partial(v.choice, "billing method", choices=rules.BILLING_METHODS),
    "sip_domain": v.sip_domain,
    "corporation": partial(v.optional_text, "corporation", limit=128),
    "distribute_method": partial(v.choice, "distribute method",
                                 choices=rules.DISTRIBUTE_METHODS),
    "application_server": lambda x: None if x in (None, "") else v.seconds(
        "application server", x),
    "on_demand_recording": partial(v.choice, "on-demand recording",
                                   choices=rules.RECORDING_INVOCATIONS),
    "recording_service_code": v.service_code,
    "allow_recording_removal": partial(v.boolean, "allow recording removal"),
}
COLUMNS = ("id, name, currency, timezone, language, credit_limit, balance, blocked, max_calls, "
           "max_daily_usage, daily_usage_email, ip_filter, authorized_sources::text[], "
           "allowed_countries, outgoing_ddi, media_relay_set, voice_notifications, recording, "
           "features, billing_method, sip_domain, corporation, distribute_method, "
           "application_server, on_demand_recording, recording_service_code, "
           "allow_recording_removal")


def _lock(conn: psycopg.Connection, name: str) -> Row:
    row = fetch_one(conn, "SELECT id, currency FROM customers WHERE name = %s FOR UPDATE", (name,))
    if row is None:
        raise BadInput(f"unknown customer {name!r}")
    return row


def create(conn: psycopg.Connection, name: str, spec: Spec, check: bool = True) -> loader.Changes:
    """Insert a customer (currency required)."""
    values = pick({"name": name, **spec}, VALIDATORS)
    if "currency" not in values:
        raise BadInput(f"customer {name}: currency is required")
    if conn.execute("SELECT 1 FROM customers WHERE name = %s", (values["name"],)).fetchone():
        raise BadInput(f"customer {values['name']!r} already exists")
    check_features(values["name"], values, values.get("features", list(rules.FEATURES)))
    customer_id = insert(conn, "customers", values)
    if check:
        check_ddi(conn, customer_id)
    return loader.customer_changes(conn, customer_id)


def check_features(name: str, values: Spec, features: list[str]) -> None:
    """A switch a feature governs can be turned on only while the client has it."""
    for feature, fields in rules.FEATURE_FIELDS.items():
        for field in fields:
            if values.get(field) is True and feature not in features:
                raise BadInput(f"customer {name}: {field} needs the {feature} feature "
                               f"(features: {', '.join(features) or 'none'})")


def check_ddi(conn: psycopg.Connection, customer_id: int) -> None:
    """The outgoing DDI must be a number of the client: one of its accounts or aliases."""
    row = fetch_one(conn, "SELECT name, outgoing_ddi FROM customers WHERE id = %s",
                    (customer_id,))
    if row is None or not row["outgoing_ddi"]:
        return
    ddi = row["outgoing_ddi"]
    if not account.number_of(conn, ddi, customer_id):
        raise BadInput(f"customer {row['name']}: outgoing DDI {ddi} is not one of its numbers "
                       "(an account or alias of this customer)")


def change(conn: psycopg.Connection, name: str, spec: Spec, check: bool = True) -> loader.Changes:
    """Update a customer; its currency cannot change under existing accounts."""
    row = _lock(conn, name)
    spec = dict(spec)
    if "rename" in spec:
        spec["name"] = spec.pop("rename")
    values = pick(spec, VALIDATORS)
    if values.get("currency", row["currency"]) != row["currency"]:
        raise BadInput(f"customer {name}: currency cannot change ({row['currency']})")
    current, domain = conn.execute("SELECT features, sip_domain FROM customers WHERE id = %s",
                                   (row["id"],)).fetchone()  # type: ignore[misc]
    check_features(name, values, values.get("features", current))
    if domain and values.get("sip_domain", domain) != domain and conn.execute(
            "SELECT 1 FROM aliases WHERE id LIKE %s LIMIT 1", (f"%@{domain}",)).fetchone():
        raise BadInput(f"customer {name}: extensions of {domain} remain (aliases "
                       f"<extension>@{domain}); delete or move them first")
    update(conn, "customers", "id", row["id"], values)
    if check:
        check_ddi(conn, row["id"])
    return loader.customer_changes(conn, row["id"], old_domain=domain)


def remove(conn: psycopg.Connection, name: str) -> loader.Changes:
    """Delete a customer that has no accounts left."""
    row = _lock(conn, name)
    if conn.execute("SELECT 1 FROM accounts WHERE customer_id = %s LIMIT 1",
                    (row["id"],)).fetchone():
        raise BadInput(f"customer {name} still has accounts (delete them first)")
    domain = conn.execute("SELECT sip_domain FROM customers WHERE id = %s",
                          (row["id"],)).fetchone()[0]  # type: ignore[index]
    conn.execute("DELETE FROM customers WHERE id = %s", (row["id"],))
    return loader.customer_changes(conn, row["id"], old_domain=domain)


def exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM customers WHERE name = %s", (name,)).fetchone() is not None


def show(conn: psycopg.Connection, name: str) -> Row:
    row = fetch_one(conn, f"SELECT {COLUMNS} FROM customers WHERE name = %s", (name,))
    if row is None:
        raise BadInput(f"unknown customer {name!r}")
    row["accounts"] = conn.execute("SELECT count(*) FROM accounts WHERE customer_id = %s",
                                   (row["id"],)).fetchone()[0]  # type: ignore[index]
    for feature, fields in rules.FEATURE_FIELDS.items():  # what is off is hidden
        if feature not in row["features"]:
            for name in fields:
                row.pop(name, None)
    return row


def listing(conn: psycopg.Connection) -> list[Row]:
    return fetch(conn, "SELECT c.id, c.name, c.currency, c.credit_limit, c.balance, c.blocked,"
                       " (SELECT count(*) FROM accounts a WHERE a.customer_id = c.id) AS accounts"
                       " FROM customers c ORDER BY c.name")


def check_media_set(settings: Settings, spec: Spec) -> Spec:
    """A client's media relay set must be one the settings define (media_relay_sets)."""
    name = spec.get("media_relay_set")
    if name and media.set_of(settings, name) is None:
        known = ", ".join(media.relay_sets(settings)) or "none"
        raise BadInput(f"media relay set {name!r} is not in the settings' media_relay_sets "
                       f"(sets: {known})")
    return spec


def register(sub: Any) -> None:
    """Add the customer command group."""
    group = sub.add_parser("customer", help="customers (tenants)")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="create a customer")
    p.add_argument("name")
    add_options(p, FIELDS)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.name, check_media_set(ctx.settings, given(a, FIELDS))),
        f"created customer {a.name}")))
    p = actions.add_parser("update", help="change a customer")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW", help="new name")
    add_options(p, FIELDS)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.name, check_media_set(ctx.settings, given(a, [*FIELDS, "rename"]))),
        f"updated customer {a.name}")))
    p = actions.add_parser("delete", help="delete a customer without accounts")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.name), f"deleted customer {a.name}")))
    p = actions.add_parser("show", help="one customer")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.name)))
    p = actions.add_parser("list", help="all customers")
    p.set_defaults(func=lambda ctx, a: read(ctx, listing))

